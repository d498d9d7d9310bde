import { busUrlSchema } from '@blog/common';
import { components, publicComponents, subscribersValue, topology, upstreamsValue, type Component } from '@blog/topology';
import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { IService } from 'kubernetes-models/v1/Service';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadEventBusConfig } from '../../services/event-bus/src/config.js';
import { loadGatewayConfig } from '../../services/gateway/src/config.js';
import { eachContainer, envValue, workloadsOf } from './checks.js';
import { describeDoc, loadAllManifests, ofKind, readRepoFile, type ManifestDoc, type MutableBody } from './manifests.js';

/**
 * docker-compose.yml, the Dockerfiles and the Kubernetes manifests name the components, their ports
 * and who the bus pushes to in YAML of their own: each must say what @blog/topology says. Each check
 * returns the problems it found, one sentence each, so a failure lists what to change.
 */

/** Where a component is reachable in the cluster: its Service. */
const inCluster = (component: Component) => `http://${component.kubernetesService}:${component.port}`;
/** Where a component is reachable in compose: the compose service named after it. */
const inCompose = (component: Component) => `http://${component.name}:${component.port}`;

const componentOf = (app: unknown): Component | undefined => components.find((component) => component.name === app);

// --- Kubernetes -----------------------------------------------------------------------------------

/**
 * Each component the cluster runs has pods labelled app=<name> that listen (container port `http`,
 * and PORT when set) on its port, behind a Service with its Service name and port; the manifests run
 * nothing the topology keeps out of the cluster.
 */
function kubernetesPortProblems(docs: readonly ManifestDoc[]): string[] {
  const problems: string[] = [];
  const workloads = workloadsOf(docs);
  const services = ofKind<IService>(docs, 'Service');
  for (const component of components) {
    const own = workloads.filter((workload) => workload.typed.spec?.template.metadata?.labels?.app === component.name);
    if (component.kubernetesService === undefined) {
      problems.push(
        ...own.map((workload) => `${describeDoc(workload)}: runs ${component.name}, which the topology keeps out of the cluster`),
      );
      continue;
    }
    if (own.length === 0) problems.push(`no workload of the manifests runs ${component.name} (pods labelled app=${component.name})`);
    if (!services.some((service) => service.name === component.kubernetesService))
      problems.push(`no Service ${component.kubernetesService} for ${component.name}`);
  }
  for (const { doc, container } of eachContainer(docs)) {
    const component = componentOf(doc.typed.spec?.template.metadata?.labels?.app);
    if (!component) continue;
    const where = `${describeDoc(doc)} container ${container.name}`;
    const http = (container.ports ?? []).find((port) => port.name === 'http');
    if (http?.containerPort !== component.port)
      problems.push(`${where}: container port http is ${String(http?.containerPort)}, ${component.name} listens on ${component.port}`);
    const port = envValue(container, 'PORT');
    if (port !== undefined && port !== String(component.port))
      problems.push(`${where}: PORT ${port}, ${component.name} listens on ${component.port}`);
  }
  for (const service of services) {
    const component = componentOf(service.typed.spec?.selector?.app);
    if (!component) continue;
    if (service.name !== component.kubernetesService)
      problems.push(`${describeDoc(service)}: selects ${component.name}, whose Service is ${String(component.kubernetesService)}`);
    const ports = (service.typed.spec?.ports ?? []).map((port) => port.port);
    if (!ports.includes(component.port))
      problems.push(`${describeDoc(service)}: ports ${ports.join(', ')}, ${component.name} listens on ${component.port}`);
  }
  return problems;
}

/**
 * The entry routes to exactly the public components, each on its Service and port: every Ingress
 * and every HTTPRoute, and the policy that lets the entry's proxies in (`app In [...]`).
 */
function entryProblems(docs: readonly ManifestDoc[]): string[] {
  const expected = [...new Set(publicComponents.map((component) => `${component.kubernetesService}:${component.port}`))].sort();
  const compare = (doc: ManifestDoc, found: string[]) => {
    const unique = [...new Set(found)].sort();
    return unique.join() === expected.join()
      ? []
      : [`${describeDoc(doc)}: routes to ${unique.join(', ')}; the topology's public components are ${expected.join(', ')}`];
  };
  const publicNames = publicComponents.map((component) => component.name).sort();
  return [
    ...ofKind<IIngress>(docs, 'Ingress').flatMap((doc) =>
      compare(
        doc,
        (doc.typed.spec?.rules ?? []).flatMap((rule) =>
          (rule.http?.paths ?? []).map((path) => `${path.backend.service?.name}:${path.backend.service?.port?.number}`),
        ),
      ),
    ),
    ...ofKind<IHTTPRoute>(docs, 'HTTPRoute').flatMap((doc) =>
      compare(
        doc,
        (doc.typed.spec.rules ?? []).flatMap((rule) => (rule.backendRefs ?? []).map((ref) => `${ref.name}:${ref.port}`)),
      ),
    ),
    ...ofKind<{ spec: { podSelector: { matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> } } }>(
      docs,
      'NetworkPolicy',
    ).flatMap((doc) =>
      (doc.typed.spec.podSelector.matchExpressions ?? [])
        .filter((expression) => expression.key === 'app' && expression.operator === 'In')
        .flatMap((expression) => {
          const values = [...(expression.values ?? [])].sort();
          return values.join() === publicNames.join()
            ? []
            : [
                `${describeDoc(doc)}: lets the entry reach ${values.join(', ')}; the topology's public components are ${publicNames.join(', ')}`,
              ];
        }),
    ),
  ];
}

/**
 * The bus pushes to every subscriber of the topology, each on its Service, port and events path, or
 * (where every service pulls the log) to no one; every service finds the bus at its Service and port.
 */
function busWiringProblems(docs: readonly ManifestDoc[]): string[] {
  const everySubscriber = subscribersValue(inCluster);
  const busUrl = inCluster(topology['event-bus']);
  return eachContainer(docs).flatMap(({ doc, container }) => {
    const where = `${describeDoc(doc)} container ${container.name}`;
    const problems: string[] = [];
    const subscribers = envValue(container, 'SUBSCRIBERS');
    if (subscribers !== undefined && subscribers !== '' && subscribers !== everySubscriber)
      problems.push(`${where}: SUBSCRIBERS is ${subscribers}, expected ${everySubscriber} (or empty, where every service pulls)`);
    const url = envValue(container, 'EVENT_BUS_URL');
    if (url !== undefined && url !== busUrl) problems.push(`${where}: EVENT_BUS_URL is ${url}, expected ${busUrl}`);
    return problems;
  });
}

// --- docker compose and the images ------------------------------------------------------------------

interface ComposeFile {
  services: Record<string, { environment?: Record<string, string>; ports?: string[] } | undefined>;
}

/** Compose runs every component under its name, and wires SUBSCRIBERS, EVENT_BUS_URL, UPSTREAMS and the published port from the topology. */
function composeProblems(compose: ComposeFile): string[] {
  const problems = components
    .filter((component) => !compose.services[component.name])
    .map((component) => `docker-compose.yml: no service ${component.name}`);
  const expect = (service: string, variable: string, expected: string) => {
    const value = compose.services[service]?.environment?.[variable];
    if (value !== expected) problems.push(`docker-compose.yml ${service}: ${variable} is ${String(value)}, expected ${expected}`);
  };
  expect('event-bus', 'SUBSCRIBERS', subscribersValue(inCompose));
  expect('gateway', 'UPSTREAMS', upstreamsValue(inCompose));
  for (const [name, service] of Object.entries(compose.services))
    if (service?.environment?.EVENT_BUS_URL !== undefined) expect(name, 'EVENT_BUS_URL', inCompose(topology['event-bus']));
  for (const published of compose.services.gateway?.ports ?? []) {
    const containerPort = published.split(':').at(-1);
    if (containerPort !== String(topology.gateway.port))
      problems.push(`docker-compose.yml gateway: publishes ${published}, the gateway listens on ${topology.gateway.port}`);
  }
  return problems;
}

/** Each component's image: its Dockerfile, and for the client the nginx configuration in it. */
const imageFiles = (component: Component) =>
  component.name === 'client' ? ['client/Dockerfile', 'client/nginx.conf'] : [`services/${component.name}/Dockerfile`];

/**
 * Compose sets no PORT: each container listens where its image says. Every port an image names (PORT,
 * EXPOSE, the healthcheck, Vite's --port, nginx's listen) is its component's, and each image EXPOSEs it.
 */
function imagePortProblems(read: (file: string) => string): string[] {
  return components.flatMap((component) =>
    imageFiles(component).flatMap((file) => {
      const text = read(file);
      const problems = [...text.matchAll(/\bPORT=(\d+)|^EXPOSE\s+(\d+)|127\.0\.0\.1[:/](\d+)|--port\s+(\d+)|^\s*listen\s+(\d+)/gm)]
        .filter((match) => Number(match.slice(1).find(Boolean)) !== component.port)
        .map((match) => `${file}: ${match[0].trim()}, ${component.name} listens on ${component.port}`);
      if (file.endsWith('Dockerfile') && !new RegExp(`^EXPOSE\\s+${component.port}\\b`, 'm').test(text))
        problems.push(`${file}: does not EXPOSE ${component.port}`);
      return problems;
    }),
  );
}

// --- The tests ------------------------------------------------------------------------------------

const docs = loadAllManifests();
const composeText = readRepoFile('docker-compose.yml');
// Compose's YAML merges anchors (`<<: *consumer-env`).
const loadCompose = (text: string) => parseDocument(text, { merge: true }).toJS() as ComposeFile;

/** The manifests with one document changed, to show a check catches the change. */
function withChange(kind: string, name: string, change: (body: MutableBody) => void): ManifestDoc[] {
  const targets = docs.filter((doc) => doc.kind === kind && doc.name === name);
  if (targets.length === 0) throw new Error(`no ${kind}/${name} in the manifests`);
  return docs.map((doc) => {
    if (doc !== targets[0]) return doc;
    const body = structuredClone(doc.body);
    change(body);
    return { ...doc, body };
  });
}

describe('the Kubernetes manifests against the topology', () => {
  it('run each component on its port, behind its Service, and nothing the topology keeps out of the cluster', () => {
    expect(kubernetesPortProblems(docs)).toEqual([]);
  });

  it('when a Deployment listens on another port, or a Service selects another component, then the check names each mismatch', () => {
    const moved = withChange('Deployment', 'moderation-depl', (body) => {
      const container = body.spec.template.spec.containers[0];
      container.ports[0].containerPort = 4004;
      container.env.find((variable: { name: string }) => variable.name === 'PORT').value = '4004';
    });
    const misselected = withChange('Service', 'moderation-srv', (body) => {
      body.spec.selector.app = 'query';
    });

    expect(kubernetesPortProblems(moved)).toEqual([
      expect.stringMatching(/Deployment\/moderation-depl container moderation: container port http is 4004, moderation listens on 4003$/),
      expect.stringMatching(/Deployment\/moderation-depl container moderation: PORT 4004, moderation listens on 4003$/),
    ]);
    expect(kubernetesPortProblems(misselected)).toEqual([
      expect.stringMatching(/Service\/moderation-srv: selects query, whose Service is query-srv$/),
      expect.stringMatching(/Service\/moderation-srv: ports 4003, query listens on 4002$/),
    ]);
  });

  it('route the entry (Ingress, HTTPRoute and their policies) to exactly the public components', () => {
    expect(entryProblems(docs)).toEqual([]);
  });

  it('when the Ingress routes to an internal component, then the check names it', () => {
    const exposed = withChange('Ingress', 'ingress-srv', (body) => {
      body.spec.rules[0].http.paths[0].backend.service = { name: 'moderation-srv', port: { number: 4003 } };
    });

    expect(entryProblems(exposed)).toEqual([
      expect.stringMatching(
        /Ingress\/ingress-srv: routes to client-srv:3000, comments-srv:4001, moderation-srv:4003, query-srv:4002; the topology's public components are/,
      ),
    ]);
  });

  it("wire the bus's SUBSCRIBERS and every service's EVENT_BUS_URL from the topology", () => {
    expect(busWiringProblems(docs)).toEqual([]);
  });

  it('when SUBSCRIBERS leaves a subscriber out, or a service calls the bus on another port, then the check names both', () => {
    const broken = withChange('Deployment', 'event-bus-depl', (body) => {
      const env = body.spec.template.spec.containers[0].env;
      const subscribers = env.find((variable: { name: string }) => variable.name === 'SUBSCRIBERS');
      subscribers.value = subscribers.value.replace(/,moderation=[^,]*/, '');
    });
    const wrongPort = withChange('Deployment', 'comments-depl', (body) => {
      body.spec.template.spec.containers[0].env.find((variable: { name: string }) => variable.name === 'EVENT_BUS_URL').value =
        'http://event-bus-srv:4004';
    });

    expect(busWiringProblems(broken)).toEqual([
      expect.stringMatching(
        /Deployment\/event-bus-depl container event-bus: SUBSCRIBERS is .*query-srv:4002\/events, expected .*moderation=http:\/\/moderation-srv:4003\/events/,
      ),
    ]);
    expect(busWiringProblems(wrongPort)).toEqual([
      expect.stringMatching(
        /Deployment\/comments-depl container comments: EVENT_BUS_URL is http:\/\/event-bus-srv:4004, expected http:\/\/event-bus-srv:4005$/,
      ),
    ]);
  });
});

describe('docker compose against the topology', () => {
  it('runs every component, and wires SUBSCRIBERS, EVENT_BUS_URL, UPSTREAMS and the published port from it', () => {
    expect(composeProblems(loadCompose(composeText))).toEqual([]);
  });

  it("when the gateway's UPSTREAMS or the bus's SUBSCRIBERS name another port, then the check names both", () => {
    const broken = loadCompose(
      composeText
        .replace('comments-srv=http://comments:4001', 'comments-srv=http://comments:4010')
        .replace('query=http://query:4002/events', 'query=http://query:4020/events'),
    );

    expect(composeProblems(broken)).toEqual([
      expect.stringMatching(/^docker-compose.yml event-bus: SUBSCRIBERS is .*query:4020.*, expected .*query:4002/),
      expect.stringMatching(/^docker-compose.yml gateway: UPSTREAMS is .*comments:4010.*, expected .*comments:4001/),
    ]);
  });

  it('runs each image on its port: PORT, EXPOSE, the healthcheck, and what the client serves on', () => {
    expect(imagePortProblems(readRepoFile)).toEqual([]);
  });

  it("when an image's healthcheck asks another port, then the check names the file and the line", () => {
    const read = (file: string) =>
      file === 'services/query/Dockerfile'
        ? readRepoFile(file).replace("fetch('http://127.0.0.1:4002/readyz')", "fetch('http://127.0.0.1:4020/readyz')")
        : readRepoFile(file);

    expect(imagePortProblems(read)).toEqual(['services/query/Dockerfile: 127.0.0.1:4020, query listens on 4002']);
  });
});

describe('the defaults in code', () => {
  it('when nothing is set, then the bus, the gateway and the services find each other on this machine where the topology puts them', () => {
    const bus = loadEventBusConfig({});
    const gateway = loadGatewayConfig({});

    expect(bus.PORT).toBe(topology['event-bus'].port);
    expect(bus.SUBSCRIBERS).toEqual(
      subscribersValue((component) => `http://localhost:${component.port}`)
        .split(',')
        .map((item) => ({ name: item.split('=')[0], url: item.split('=')[1] })),
    );
    expect(gateway.PORT).toBe(topology.gateway.port);
    expect([...gateway.UPSTREAMS.keys()]).toEqual(
      publicComponents.filter((component) => component.name !== 'client').map((component) => component.kubernetesService),
    );
    expect(gateway.CLIENT_SERVICE).toBe(topology.client.kubernetesService);
    expect(busUrlSchema.parse(undefined)).toBe(`http://localhost:${topology['event-bus'].port}`);
  });
});
