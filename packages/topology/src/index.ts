/**
 * The components of the blog, written once: what each is called, where it listens, whether the bus
 * pushes events to it, whether the Ingress routes to it. Code reads it from here (each service's
 * default PORT, the bus's default SUBSCRIBERS, the gateway's default UPSTREAMS, `pnpm start`, the
 * test stacks); docker-compose.yml and the Kubernetes manifests stay YAML, and test/infra holds them
 * to it. It depends on nothing, so anything (a plain script included) can import it.
 */

export interface Component<Name extends string = string> {
  /**
   * services/<name> (client/ for the client), the compose service, the `app` label of its pods, its
   * name in SUBSCRIBERS and in its logs and metrics.
   */
  readonly name: Name;
  /** Where it listens: its default PORT, and the port of its container and of its Service. */
  readonly port: number;
  /** The path the bus delivers every event to (POST), when the bus pushes to it; undefined when it does not. */
  readonly events: '/events' | undefined;
  /** Whether the Ingress routes to it (the gateway stands in for the Ingress: it is not behind it). */
  readonly public: boolean;
  /**
   * Its Kubernetes Service, which the Ingress, SUBSCRIBERS, EVENT_BUS_URL and UPSTREAMS name; undefined
   * for a component the manifests do not run.
   */
  readonly kubernetesService: string | undefined;
}

// In the order `pnpm start` lists them and SUBSCRIBERS and UPSTREAMS name them.
const definitions = [
  { name: 'event-bus', port: 4005, events: undefined, public: false, kubernetesService: 'event-bus-srv' },
  { name: 'posts', port: 4000, events: '/events', public: true, kubernetesService: 'posts-clusterip-srv' },
  { name: 'comments', port: 4001, events: '/events', public: true, kubernetesService: 'comments-srv' },
  { name: 'query', port: 4002, events: '/events', public: true, kubernetesService: 'query-srv' },
  { name: 'moderation', port: 4003, events: '/events', public: false, kubernetesService: 'moderation-srv' },
  // The public entry of `pnpm start` and compose; the cluster has the Ingress instead.
  { name: 'gateway', port: 3000, events: undefined, public: false, kubernetesService: undefined },
  // The built React app behind nginx (Vite in a dev image); `pnpm start`'s gateway serves it itself.
  { name: 'client', port: 3000, events: undefined, public: true, kubernetesService: 'client-srv' },
] as const satisfies readonly Component[];

type Definition = (typeof definitions)[number];

export type ComponentName = Definition['name'];
/** A component the bus pushes every event to. */
export type SubscriberName = Extract<Definition, { events: '/events' }>['name'];
/** A Kubernetes Service the Ingress routes to. */
export type PublicServiceName = Extract<Definition, { public: true }>['kubernetesService'];

/** Every component, in a fixed order. */
export const components: readonly Component<ComponentName>[] = Object.freeze(
  definitions.map((definition) => Object.freeze({ ...definition })),
);

/** Each component by name: `topology['event-bus'].port`. */
export const topology: { readonly [Name in ComponentName]: Component<Name> } = Object.freeze(
  Object.fromEntries(components.map((component) => [component.name, component])) as { [Name in ComponentName]: Component<Name> },
);

/** The components the bus pushes every event to, in SUBSCRIBERS order. */
export const subscribers: readonly Component<SubscriberName>[] = Object.freeze(
  components.filter((component): component is Component<SubscriberName> => component.events !== undefined),
);

/** The components the Ingress routes to, in UPSTREAMS order. */
export const publicComponents: readonly Component<ComponentName>[] = Object.freeze(components.filter((component) => component.public));

/**
 * The bus's SUBSCRIBERS (`name=url,...`) for one way of running the blog: `baseUrlOf` says where a
 * subscriber is reachable there, e.g. `(c) => \`http://${c.kubernetesService}:${c.port}\`` in the cluster.
 */
export function subscribersValue(baseUrlOf: (component: Component<SubscriberName>) => string): string {
  return subscribers.map((component) => `${component.name}=${baseUrlOf(component)}${component.events}`).join(',');
}

/**
 * The gateway's UPSTREAMS (`service=url,...`: each Service of the Ingress and where it is reachable)
 * for one way of running the blog; a component `baseUrlOf` gives no URL for is left out (the gateway
 * serves the client itself with CLIENT_DIR).
 */
export function upstreamsValue(baseUrlOf: (component: Component<ComponentName>) => string | undefined): string {
  return publicComponents
    .flatMap((component) => {
      const url = baseUrlOf(component);
      return url === undefined ? [] : [`${component.kubernetesService}=${url}`];
    })
    .join(',');
}
