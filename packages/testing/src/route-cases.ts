import type { PublicServiceName } from '@blog/topology';

/**
 * The routing table the client relies on, as cases every entry point must agree on: the Ingress
 * (evaluated like ingress-nginx), `pnpm start`'s gateway, and the compose entry. Services are named
 * as in the Ingress.
 */
export interface RouteCase {
  method: 'GET' | 'POST';
  path: string;
  service: PublicServiceName;
}

export const routeCases: readonly RouteCase[] = [
  { method: 'POST', path: '/posts/create', service: 'posts-clusterip-srv' },
  { method: 'POST', path: '/posts/0b6c1f2e-1d2a-4c55-9a3e-2f9f7b1c0d11/comments', service: 'comments-srv' },
  { method: 'GET', path: '/posts/0b6c1f2e-1d2a-4c55-9a3e-2f9f7b1c0d11/comments', service: 'comments-srv' },
  { method: 'GET', path: '/posts/abc/comments', service: 'comments-srv' },
  { method: 'GET', path: '/posts', service: 'query-srv' },
  { method: 'GET', path: '/posts/', service: 'query-srv' },
  { method: 'GET', path: '/posts/stream', service: 'query-srv' },
  // ingress-nginx regexes are anchored at the start only: what follows a matched prefix is the same route
  { method: 'GET', path: '/posts/abc/comments/', service: 'comments-srv' },
  { method: 'POST', path: '/posts/create/', service: 'posts-clusterip-srv' },
  { method: 'GET', path: '/postsX', service: 'query-srv' },
  // ingress-nginx matches case-insensitively
  { method: 'GET', path: '/Posts', service: 'query-srv' },
  { method: 'POST', path: '/POSTS/CREATE', service: 'posts-clusterip-srv' },
  { method: 'GET', path: '/', service: 'client-srv' },
  { method: 'GET', path: '/index.html', service: 'client-srv' },
  { method: 'GET', path: '/assets/app.js', service: 'client-srv' },
  { method: 'GET', path: '/about', service: 'client-srv' },
  // The services' internal routes are not public: these land on the client, never on a service.
  { method: 'GET', path: '/events', service: 'client-srv' },
  { method: 'POST', path: '/events', service: 'client-srv' },
  { method: 'GET', path: '/metrics', service: 'client-srv' },
];

/**
 * A request that tries to leave a public prefix for an internal route by the way it spells its
 * path. Every entry point is held to the same list: the gateway and the compose entry refuse each
 * one with 400, and the cluster's routes (evaluated in test/infra) never take one to an internal
 * route.
 */
export interface PathTrickCase {
  method: 'GET' | 'POST';
  path: string;
  /** How the path is spelled, for test names. */
  trick: string;
}

/** Every public prefix of the Ingress, the root included. */
const publicPrefixes = ['/posts', '/posts/create', '/posts/0b6c1f2e-1d2a-4c55-9a3e-2f9f7b1c0d11/comments', '/posts/stream', '/'];

/** Internal routes of every service: the bus's deliveries, the metrics, the probes. */
const internalTargets = [
  { method: 'POST', name: 'events' },
  { method: 'GET', name: 'metrics' },
  { method: 'GET', name: 'healthz' },
] as const;

/** A step up (`up`) and the separator around it (`slash`), each spelled one way. */
const spellings = [
  { trick: 'dot segments', up: '..', slash: '/' },
  { trick: 'encoded dots', up: '%2e%2e', slash: '/' },
  { trick: 'encoded dots, upper case', up: '%2E%2E', slash: '/' },
  { trick: 'half-encoded dots', up: '.%2E', slash: '/' },
  { trick: 'double-encoded dots', up: '%252e%252e', slash: '/' },
  { trick: 'backslashes', up: '..', slash: '\\' },
  { trick: 'encoded backslashes', up: '..', slash: '%5c' },
  { trick: 'encoded backslashes, upper case', up: '..', slash: '%5C' },
  { trick: 'encoded slashes', up: '..', slash: '%2f' },
  { trick: 'encoded slashes and dots, upper case', up: '%2E%2E', slash: '%2F' },
  { trick: 'double-encoded slashes', up: '..', slash: '%252f' },
  { trick: 'doubled slashes', up: '..', slash: '//' },
  { trick: '";" parameters', up: '..;', slash: '/' },
];

function climb(prefix: string, levels: number, { up, slash }: { up: string; slash: string }, target: string): string {
  const steps = Array.from({ length: levels }, () => up);
  // From the root the first step follows its slash; from a prefix, the spelled separator comes first.
  return prefix.endsWith('/') ? `${prefix}${[...steps, target].join(slash)}` : `${prefix}${slash}${[...steps, target].join(slash)}`;
}

export const pathTrickCases: readonly PathTrickCase[] = [
  ...publicPrefixes.flatMap((prefix) =>
    [1, 2].flatMap((levels) =>
      internalTargets.flatMap(({ method, name }) =>
        spellings.map((spelling) => ({ method, path: climb(prefix, levels, spelling, name), trick: `${spelling.trick}, ${levels} up from ${prefix}` })),
      ),
    ),
  ),
  { method: 'GET', path: '/posts;/../metrics', trick: '";" on the prefix, then a dot segment' },
  { method: 'POST', path: '/posts/create;x=1/../../events', trick: '";" parameters on the prefix, then dot segments' },
  { method: 'POST', path: '//events', trick: 'a doubled leading slash' },
  { method: 'GET', path: '//metrics', trick: 'a doubled leading slash' },
  { method: 'GET', path: '/posts/%2e%2e%2fmetrics', trick: 'encoded dots and slash in one segment' },
  { method: 'POST', path: '/posts/create/%2e%2e%2f%2e%2e%2fevents', trick: 'encoded dots and slashes in one segment' },
  { method: 'GET', path: '/POSTS/%2E%2E/METRICS', trick: 'encoded dots, upper-case prefix' },
  { method: 'GET', path: '/posts/stream/..%2f..%2fhealthz?x=1', trick: 'encoded slashes before a query string' },
];
