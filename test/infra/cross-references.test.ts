import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { consumerNames } from '@blog/testing';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  allowedFlows,
  authorizationBlock,
  autoscalerProblems,
  backendProblems,
  copyDriftProblems,
  deliveryProblems,
  disruptionBudgetProblems,
  eachContainer,
  envUrlProblems,
  envValue,
  eventStoreProblems,
  gatewayParentProblems,
  natsAccessProblems,
  natsClusterProblems,
  neededFlows,
  networkPolicyProblems,
  podHardeningProblems,
  scaleOutProblems,
  secretRefProblems,
  serviceAccountProblems,
  serviceSelectorProblems,
  volumeAt,
} from './checks.js';
import { describeDoc, gatewayApiGlob, globRepo, k8sGlob, loadManifests, loadRunManifests, loadSkaffold, ofKind, readRepoFile, skaffoldRuns, type Body, type ManifestDoc, type MutableBody } from './manifests.js';

/** The manifests refer to each other by name and port: every reference must land, in every Skaffold run. */

/** infra/k8s/ and the Gateway API alternative: the Ingress and the HTTPRoute side by side, to compare. */
const docs = loadManifests([...globRepo(k8sGlob), ...globRepo(gatewayApiGlob)]);
const runs = skaffoldRuns(loadSkaffold());

/** The manifests with one document changed, to show a check catches the change. */
function withChange(kind: string, name: string, change: (body: MutableBody) => void, set: readonly ManifestDoc[] = docs): ManifestDoc[] {
  const target = set.find((doc) => doc.kind === kind && doc.name === name);
  if (!target) throw new Error(`no ${kind}/${name} in the manifests`);
  return set.map((doc) => {
    if (doc !== target) return doc;
    const body = structuredClone(doc.body);
    change(body);
    return { ...doc, body };
  });
}

describe('routing to Services', () => {
  it('every Ingress backend and HTTPRoute backendRef is an existing Service and one of its ports', () => {
    expect(backendProblems(docs)).toEqual([]);
  });

  it('when an Ingress backend names a Service that does not exist, then the check names the path', () => {
    const broken = withChange('Ingress', 'ingress-srv', (body) => {
      body.spec.rules[0].http.paths[2].backend.service.name = 'query-service';
    });

    expect(backendProblems(broken)).toEqual([expect.stringMatching(/ingress-srv\.yaml #1 Ingress\/ingress-srv rules\[0\]\.paths\[2\] \(\/posts\): no Service named query-service/)]);
  });

  it('when an HTTPRoute backendRef has a port its Service lacks, then the check names the rule', () => {
    const broken = withChange('HTTPRoute', 'blog-routes', (body) => {
      body.spec.rules[1].backendRefs[0].port = 4002;
    });

    expect(backendProblems(broken)).toEqual([expect.stringMatching(/HTTPRoute\/blog-routes rules\[1\]\.backendRefs\[0\]: Service posts-clusterip-srv has no port 4002/)]);
  });

  it('the HTTPRoute attaches to the Gateway of the manifests, on a hostname its listener serves', () => {
    expect(gatewayParentProblems(docs)).toEqual([]);
    expect(gatewayParentProblems(withChange('HTTPRoute', 'blog-routes', (body) => (body.spec.hostnames = ['blog.example'])))).toHaveLength(1);
  });
});

describe('Services and Deployments', () => {
  it("each Service selects one Deployment's pods, on a port their container declares", () => {
    expect(serviceSelectorProblems(docs)).toEqual([]);
  });

  it('when a targetPort names no container port, then the check names the Service', () => {
    const broken = withChange('Service', 'query-srv', (body) => {
      body.spec.ports[0].targetPort = 'htp';
    });

    expect(serviceSelectorProblems(broken)).toEqual([expect.stringMatching(/Service\/query-srv: targetPort htp of port 4002 is not a containerPort of Deployment query-depl/)]);
  });

  it('when a Service selector matches no pod template, then the check says so', () => {
    const broken = withChange('Service', 'posts-clusterip-srv', (body) => {
      body.spec.selector = { app: 'post' };
    });

    expect(serviceSelectorProblems(broken)).toEqual([expect.stringMatching(/Service\/posts-clusterip-srv: selector .* matches the pod template of 0 workloads/)]);
  });

  it('every service URL in a container env is an existing Service and port', () => {
    expect(envUrlProblems(docs)).toEqual([]);
  });

  it('when a subscriber URL has the wrong port, then the check names the container and variable', () => {
    const broken = withChange('Deployment', 'event-bus-depl', (body) => {
      const env = body.spec.template.spec.containers[0].env as Array<{ name: string; value: string }>;
      const subscribers = env.find((variable) => variable.name === 'SUBSCRIBERS')!;
      subscribers.value = subscribers.value.replace('query-srv:4002', 'query-srv:4020');
    });

    expect(envUrlProblems(broken)).toEqual([expect.stringMatching(/event-bus-depl container event-bus env SUBSCRIBERS \(http:\/\/query-srv:4020\): Service query-srv has no port 4020/)]);
  });

  it('the bus and every service that talks to it share EVENT_BUS_SECRET from one Secret of the manifests', () => {
    expect(secretRefProblems(docs)).toEqual([]);
  });

  it('when a service talks to the bus without the secret, or names a missing key, then the check says so', () => {
    const broken = withChange('Deployment', 'query-depl', (body) => {
      const container = (body.spec as { template: { spec: { containers: Array<{ env: Array<{ name: string }> }> } } }).template.spec.containers[0]!;
      container.env = container.env.filter((variable) => variable.name !== 'EVENT_BUS_SECRET');
    });
    const wrongKey = withChange('Deployment', 'posts-depl', (body) => {
      const container = (body.spec as { template: { spec: { containers: Array<{ env: Array<{ name: string; valueFrom?: { secretKeyRef: { key: string } } }> }> } } }).template.spec.containers[0]!;
      container.env.find((variable) => variable.name === 'EVENT_BUS_SECRET')!.valueFrom!.secretKeyRef.key = 'TYPO';
    });

    expect(secretRefProblems(broken)).toEqual([expect.stringMatching(/query-depl container query: talks to the bus without EVENT_BUS_SECRET/)]);
    expect(secretRefProblems(wrongKey)).toEqual([expect.stringMatching(/posts-depl container posts env EVENT_BUS_SECRET: Secret event-bus-secret has no key TYPO/), expect.stringMatching(/different Secrets/)]);
  });

  it('every pod runs as a ServiceAccount of the manifests', () => {
    expect(serviceAccountProblems(docs)).toEqual([]);
  });
});

describe('every container', () => {
  it('has /healthz liveness, /readyz readiness, a startup probe, requests and limits, and runs locked down', () => {
    expect(podHardeningProblems(docs)).toEqual([]);
  });

  it('when a container may write its root filesystem and escalate, then the check names both', () => {
    const loose = withChange('Deployment', 'comments-depl', (body) => {
      delete body.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem;
      body.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
      body.spec.template.spec.terminationGracePeriodSeconds = 5;
    });

    expect(podHardeningProblems(loose)).toEqual([
      expect.stringMatching(/Deployment\/comments-depl: terminationGracePeriodSeconds 5 is not above 8/),
      expect.stringMatching(/Deployment\/comments-depl container comments: readOnlyRootFilesystem is not true/),
      expect.stringMatching(/Deployment\/comments-depl container comments: allowPrivilegeEscalation is not false/),
    ]);
  });
});

describe('the event bus Deployment', () => {
  const [eventBus] = ofKind<IDeployment>(docs, 'Deployment').filter((doc) => doc.name === 'event-bus-depl');

  it('is a single writer: one replica, replaced with Recreate, never two at once', () => {
    expect(eventBus?.typed.spec?.replicas, 'event-bus-depl replicas').toBe(1);
    expect(eventBus?.typed.spec?.strategy?.type, 'event-bus-depl strategy').toBe('Recreate');
  });

  it('keeps /data on a PersistentVolumeClaim of the manifests', () => {
    const claimName = volumeAt(eventBus!, '/data')?.persistentVolumeClaim?.claimName;
    const claims = ofKind(docs, 'PersistentVolumeClaim').map((doc) => doc.name);

    expect(claimName, 'event-bus-depl: the volume at /data should be a persistentVolumeClaim').toBeDefined();
    expect(claims, `event-bus-depl claims ${claimName}, which the manifests should define`).toContain(claimName);
  });

  it('when the file-backed bus would roll (two writers for a moment), then the event store check says so', () => {
    const rolling = withChange('Deployment', 'event-bus-depl', (body) => {
      body.spec.strategy = { type: 'RollingUpdate' };
    });

    expect(eventStoreProblems(docs)).toEqual([]);
    expect(eventStoreProblems(rolling)).toEqual([expect.stringMatching(/Deployment\/event-bus-depl: keeps the log in a file, so it must be a Deployment with the Recreate strategy/)]);
  });
});

describe('delivery to the services', () => {
  it('each service the bus pushes to is in SUBSCRIBERS and runs one replica', () => {
    expect(deliveryProblems(docs)).toEqual([]);
  });

  it('when a pushed-to service gets two replicas, then the check says to pull', () => {
    const scaled = withChange('Deployment', 'posts-depl', (body) => {
      body.spec.replicas = 2;
    });

    expect(deliveryProblems(scaled)).toEqual([expect.stringMatching(/posts-depl container posts: push delivery with up to 2 replicas: each event would reach one of them; set EVENT_DELIVERY=pull/)]);
  });
});

describe('the Ingress', () => {
  const [ingress] = ofKind<IIngress>(docs, 'Ingress');
  const annotations = ingress?.typed.metadata?.annotations ?? {};

  it('is for ingress-nginx and the posts.com host', () => {
    expect(ingress?.typed.spec?.ingressClassName, describeDoc(ingress!)).toBe('nginx');
    expect(ingress?.typed.spec?.rules?.map((rule) => rule.host)).toEqual(['posts.com']);
  });

  it('uses regex paths, which ingress-nginx accepts only under ImplementationSpecific', () => {
    const paths = ingress?.typed.spec?.rules?.flatMap((rule) => rule.http?.paths ?? []) ?? [];

    expect(annotations['nginx.ingress.kubernetes.io/use-regex']).toBe('true');
    expect(paths.filter((entry) => entry.pathType !== 'ImplementationSpecific').map((entry) => entry.path), 'paths not ImplementationSpecific').toEqual([]);
  });

  it('streams server-sent events: no proxy buffering, a read timeout of at least ten minutes', () => {
    expect(annotations['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout']), 'proxy-read-timeout in seconds').toBeGreaterThanOrEqual(600);
  });
});

describe('the network policies', () => {
  const needed = [...neededFlows(docs).keys()];

  it('isolate every workload and allow exactly the connections the design needs: the entry in, the services and the bus to each other, the DNS', () => {
    expect(networkPolicyProblems(docs)).toEqual([]);
    expect(needed).toEqual(
      expect.arrayContaining([
        'the ingress nginx proxies (namespace ingress-nginx) -> Deployment/query-depl:4002/TCP',
        'the gateway eg proxies (namespace envoy-gateway-system) -> Deployment/client-depl:3000/TCP',
        'Deployment/posts-depl -> Deployment/event-bus-depl:4005/TCP',
        'Deployment/event-bus-depl -> Deployment/moderation-depl:4003/TCP',
        'Deployment/query-depl -> the cluster DNS:53/UDP',
      ]),
    );
    expect(allowedFlows(docs).sort()).toEqual(needed.sort());
  });

  it('when a workload loses its policy, then the check says it is open and names what it lets in', () => {
    const open = docs.filter((doc) => !(doc.kind === 'NetworkPolicy' && doc.name === 'moderation'));

    expect(networkPolicyProblems(open)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/Deployment\/moderation-depl: no NetworkPolicy selects its pods for Ingress/),
        expect.stringMatching(/Deployment\/moderation-depl: no NetworkPolicy selects its pods for Egress/),
        'another pod of the namespace -> Deployment/moderation-depl:4003/TCP is allowed, but nothing in the design needs it',
        'Deployment/moderation-depl -> an address outside the cluster:443/TCP is allowed, but nothing in the design needs it',
      ]),
    );
  });

  it('when an egress rule names no peer, or an ingress rule lets in the whole namespace, then the check names the connections that opens', () => {
    const anywhere = withChange('NetworkPolicy', 'posts', (body) => {
      delete body.spec.egress[0].to;
      delete body.spec.egress[0].ports;
    });
    const wholeNamespace = withChange('NetworkPolicy', 'event-bus', (body) => {
      body.spec.ingress[0].from.push({ podSelector: {} });
    });

    // Another workload's own policy still refuses posts: what opens is everything outside the set.
    expect(networkPolicyProblems(anywhere)).toEqual([
      'Deployment/posts-depl -> another pod of the namespace:8080/TCP is allowed, but nothing in the design needs it',
      'Deployment/posts-depl -> a pod labelled app=event-bus in another namespace:4222/TCP is allowed, but nothing in the design needs it',
      'Deployment/posts-depl -> a pod labelled app=nats in another namespace:4222/TCP is allowed, but nothing in the design needs it',
      'Deployment/posts-depl -> an address outside the cluster:443/TCP is allowed, but nothing in the design needs it',
    ]);
    expect(networkPolicyProblems(wholeNamespace)).toEqual(['another pod of the namespace -> Deployment/event-bus-depl:4005/TCP is allowed, but nothing in the design needs it']);
  });

  it('when the bus loses its DNS egress, or a service no longer lets the bus push to it, then the check names the refused connections and why they are needed', () => {
    const noDns = withChange('NetworkPolicy', 'event-bus', (body) => {
      body.spec.egress = body.spec.egress.filter((rule: { to: Array<{ namespaceSelector?: unknown }> }) => !rule.to.some((peer) => peer.namespaceSelector));
    });
    const noPush = withChange('NetworkPolicy', 'comments', (body) => {
      delete body.spec.ingress;
    });

    expect(networkPolicyProblems(noDns)).toEqual([
      expect.stringMatching(/^Deployment\/event-bus-depl -> the cluster DNS:53\/UDP is needed \(Deployment\/event-bus-depl names Services\), but the NetworkPolicies refuse it$/),
      expect.stringMatching(/^Deployment\/event-bus-depl -> the cluster DNS:53\/TCP is needed/),
    ]);
    expect(networkPolicyProblems(noPush)).toEqual([expect.stringMatching(/^Deployment\/event-bus-depl -> Deployment\/comments-depl:4001\/TCP is needed \(.*event-bus-depl env SUBSCRIBERS\), but the NetworkPolicies refuse it$/)]);
  });
});

/** Every check of this file, for each set of manifests Skaffold applies. */
const everyCheck = {
  backendProblems,
  gatewayParentProblems,
  serviceSelectorProblems,
  envUrlProblems,
  secretRefProblems,
  serviceAccountProblems,
  podHardeningProblems,
  disruptionBudgetProblems,
  autoscalerProblems,
  deliveryProblems,
  eventStoreProblems,
  natsClusterProblems,
  natsAccessProblems,
  networkPolicyProblems,
};

describe.each(runs.map((run) => [run.name, loadRunManifests(run)] as const))('the manifests of the %s', (_name, set) => {
  it.each(Object.entries(everyCheck))('%s finds nothing', (_check, check) => {
    expect(check(set)).toEqual([]);
  });
});

describe('the jetstream profile', () => {
  const set = loadRunManifests(runs.find((run) => run.name === 'profile jetstream')!);
  const changed = (kind: string, name: string, change: (body: MutableBody) => void) => withChange(kind, name, change, set);
  const containerOf = (name: string) => eachContainer(set).find(({ doc }) => doc.name === name)!.container;

  it('runs the bus and every service that reads the log on two replicas or more, and every service pulls', () => {
    expect(scaleOutProblems(set)).toEqual([]);
    expect(scaleOutProblems(docs), 'the default profile runs one of each: the check must tell').not.toEqual([]);
  });

  it('when a service is back to one replica and push delivery, then the checks name it', () => {
    const broken = changed('Deployment', 'moderation-depl', (body) => {
      body.spec.replicas = 1;
      const container = body.spec.template.spec.containers[0];
      container.env = container.env.filter((variable: { name: string }) => variable.name !== 'EVENT_DELIVERY');
    });

    expect(scaleOutProblems(broken)).toEqual([
      expect.stringMatching(/Deployment\/moderation-depl: runs 1 replica, expected 2 or more/),
      expect.stringMatching(/Deployment\/moderation-depl container moderation: EVENT_DELIVERY is unset \(push\), expected pull/),
    ]);
    expect(deliveryProblems(broken)).toEqual([expect.stringMatching(/moderation-depl container moderation: push delivery, but no bus lists its Service \(moderation-srv\) in SUBSCRIBERS/)]);
  });

  it('keeps the log in JetStream behind the Service nats, three copies of each event, no volume claim and no push', () => {
    const bus = containerOf('event-bus-depl');

    expect(envValue(bus, 'EVENT_STORE')).toBe('nats://nats:4222');
    expect(envValue(bus, 'EVENT_STREAM_REPLICAS')).toBe('3');
    expect(envValue(bus, 'SUBSCRIBERS')).toBe('');
    expect(ofKind(set, 'PersistentVolumeClaim').map((doc) => doc.name)).toEqual([]);
    expect(eventStoreProblems(set)).toEqual([]);
  });

  it('when the bus mounts a volume claim again, or wants more stream replicas than there are servers, then the check names both', () => {
    const broken = changed('Deployment', 'event-bus-depl', (body) => {
      body.spec.template.spec.volumes.push({ name: 'data', persistentVolumeClaim: { claimName: 'event-bus-data' } });
      body.spec.template.spec.containers[0].env.find((variable: { name: string }) => variable.name === 'EVENT_STREAM_REPLICAS').value = '5';
    });

    expect(eventStoreProblems(broken)).toEqual([
      expect.stringMatching(/Deployment\/event-bus-depl: keeps the log in JetStream, yet has storage of its own \(data\)/),
      expect.stringMatching(/Deployment\/event-bus-depl: EVENT_STREAM_REPLICAS 5, but Service nats has 3 NATS servers behind it/),
    ]);
  });

  it('when EVENT_STORE names a port the nats Service lacks, then the check names the variable', () => {
    const broken = changed('Deployment', 'event-bus-depl', (body) => {
      body.spec.template.spec.containers[0].env.find((variable: { name: string }) => variable.name === 'EVENT_STORE').value = 'nats://nats:4223';
    });

    expect(envUrlProblems(broken)).toEqual([expect.stringMatching(/event-bus-depl container event-bus env EVENT_STORE \(nats:\/\/nats:4223\): Service nats has no port 4223/)]);
  });

  it('runs NATS as three servers that route to each other, named after their pods, with JetStream on volume claims', () => {
    const [nats] = ofKind<IStatefulSet>(set, 'StatefulSet');

    expect(nats?.name).toBe('nats');
    expect(nats?.typed.spec?.replicas).toBe(3);
    expect(nats?.typed.spec?.volumeClaimTemplates?.map((template) => template.metadata?.name)).toEqual(['data']);
    expect(natsClusterProblems(set)).toEqual([]);
  });

  it('when NATS grows to five servers without routes to the new ones, or JetStream stores off its volume, then the check says so', () => {
    const grown = changed('StatefulSet', 'nats', (body) => {
      body.spec.replicas = 5;
    });
    const offVolume = changed('ConfigMap', 'nats-config', (body) => {
      body.data['nats.conf'] = body.data['nats.conf'].replace('store_dir: /data', 'store_dir: /tmp/js');
    });

    expect(natsClusterProblems(grown)).toEqual([expect.stringMatching(/StatefulSet\/nats container nats: cluster routes .*nats-2\.nats-headless:6222 are not the pods of the StatefulSet \(.*nats-4\.nats-headless:6222\)/)]);
    expect(natsClusterProblems(offVolume)).toEqual([expect.stringMatching(/StatefulSet\/nats container nats: JetStream's store_dir \/tmp\/js is not a mounted volumeClaimTemplate/)]);
  });

  it('lets only the bus reach NATS, the servers route to each other, and the bus reach nothing but NATS and the DNS', () => {
    const needed = [...neededFlows(set).keys()];

    expect(needed).toEqual(expect.arrayContaining(['Deployment/event-bus-depl -> StatefulSet/nats:4222/TCP', 'StatefulSet/nats -> StatefulSet/nats:6222/TCP', 'StatefulSet/nats -> the cluster DNS:53/UDP']));
    expect(needed.filter((flow) => flow.startsWith('Deployment/event-bus-depl -> Deployment/'))).toEqual([]);
    expect(allowedFlows(set).sort()).toEqual(needed.sort());
    expect(networkPolicyProblems(set)).toEqual([]);
  });

  it('when the NATS policy lets in any pod labelled app=event-bus, of any namespace, or drops the cluster routes, then the check names both', () => {
    const broken = changed('NetworkPolicy', 'nats', (body) => {
      body.spec.ingress[0].from[0].namespaceSelector = {};
      body.spec.ingress = body.spec.ingress.slice(0, 1);
    });

    expect(networkPolicyProblems(broken)).toEqual([
      expect.stringMatching(/^StatefulSet\/nats -> StatefulSet\/nats:6222\/TCP is needed \(.*cluster route nats:\/\/nats-\d\.nats-headless:6222\), but the NetworkPolicies refuse it$/),
      'a pod labelled app=event-bus in another namespace -> StatefulSet/nats:4222/TCP is allowed, but nothing in the design needs it',
    ]);
  });

  it('lets only the bus connect to NATS, as its user, with the password both take from one Secret, for its own stream', () => {
    expect(natsAccessProblems(set)).toEqual([]);
    expect(envValue(containerOf('event-bus-depl'), 'NATS_USER')).toBe('event-bus');
  });

  it('when NATS has no users, or the bus takes its password from another Secret or uses another stream, then the check says so', () => {
    const open = changed('ConfigMap', 'nats-config', (body) => {
      body.data['nats.conf'] = body.data['nats.conf'].replace(authorizationBlock(body.data['nats.conf'])!, '');
    });
    const otherSecret = changed('Deployment', 'event-bus-depl', (body) => {
      const env = body.spec.template.spec.containers[0].env;
      env.find((variable: { name: string }) => variable.name === 'NATS_PASSWORD').valueFrom.secretKeyRef.name = 'event-bus-secret';
      env.find((variable: { name: string }) => variable.name === 'EVENT_STREAM').value = 'OTHER';
    });

    expect(natsAccessProblems(open)).toEqual([
      expect.stringMatching(/StatefulSet\/nats container nats: nats.conf has no authorization block: any client may connect/),
      expect.stringMatching(/event-bus-depl container event-bus: NATS_USER event-bus is not a user of the NATS servers \(none\)/),
    ]);
    expect(natsAccessProblems(otherSecret)).toEqual([
      expect.stringMatching(/event-bus-depl container event-bus: NATS_PASSWORD is not from nats-secret\/EVENT_BUS_NATS_PASSWORD/),
      expect.stringMatching(/event-bus-depl container event-bus: .*StatefulSet\/nats container nats does not let it use OTHER\.events \(EVENT_STREAM OTHER\)/),
      expect.stringMatching(/does not let it use \$JS\.API\.STREAM\.INFO\.OTHER/),
    ]);
  });

  it("gives docker compose's NATS the cluster's users and permissions, and the bus there the same user and password as the server", () => {
    const compose = parseDocument(readRepoFile('docker-compose.yml')).toJS() as { services: Record<string, { command?: string[]; volumes?: string[]; environment?: Record<string, string> }> };
    const { nats, 'event-bus': bus } = compose.services;
    const clusterConf = ofKind<{ data: Record<string, string> }>(set, 'ConfigMap').find((doc) => doc.name === 'nats-config')!.typed.data['nats.conf']!;
    const unindented = (block: string | undefined) => block?.split('\n').map((line) => line.trim()).join('\n');

    const mounted = nats?.volumes?.find((volume) => volume.endsWith(':/etc/nats/nats.conf:ro'))?.split(':')[0];
    expect(nats?.command?.slice(0, 2)).toEqual(['--config', '/etc/nats/nats.conf']);
    expect(mounted).toBe('./infra/compose/nats.conf');
    expect(unindented(authorizationBlock(readRepoFile(mounted!)))).toBe(unindented(authorizationBlock(clusterConf)));
    expect(bus?.environment?.NATS_USER).toBe('event-bus');
    expect(bus?.environment?.NATS_PASSWORD).toBe(nats?.environment?.EVENT_BUS_NATS_PASSWORD);
  });

  it('gives each workload one disruption budget that lets a drain evict one pod at a time', () => {
    const budgets = ofKind<IPodDisruptionBudget>(set, 'PodDisruptionBudget').map((doc) => [doc.name, doc.typed.spec?.maxUnavailable]);

    expect(disruptionBudgetProblems(set)).toEqual([]);
    expect(budgets.sort()).toEqual(['event-bus', ...consumerNames, 'nats'].sort().map((name) => [`${name}-pdb`, 1]));
  });

  it('when a budget selects no pods, then the check names it and the Deployment left without one', () => {
    const broken = changed('PodDisruptionBudget', 'posts-pdb', (body) => {
      body.spec.selector.matchLabels.app = 'post';
    });

    expect(disruptionBudgetProblems(broken)).toEqual([
      expect.stringMatching(/PodDisruptionBudget\/posts-pdb: selector \{"app":"post"\} matches the pods of 0 workloads/),
      expect.stringMatching(/Deployment\/posts-depl: runs 2 replicas and no PodDisruptionBudget covers it/),
    ]);
  });

  it('scales query between 2 and 6 replicas on CPU, and query leaves its replicas to the autoscaler', () => {
    const [autoscaler] = ofKind<IHorizontalPodAutoscaler>(set, 'HorizontalPodAutoscaler');

    expect(autoscaler?.typed.spec).toMatchObject({ scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'query-depl' }, minReplicas: 2, maxReplicas: 6 });
    expect(autoscaler?.typed.spec?.metrics?.map((metric) => metric.resource?.name)).toEqual(['cpu']);
    expect(autoscalerProblems(set)).toEqual([]);
  });

  it('when the autoscaler names a missing Deployment, or query sets replicas again, then the check says so', () => {
    const missing = changed('HorizontalPodAutoscaler', 'query-hpa', (body) => {
      body.spec.scaleTargetRef.name = 'query';
    });
    const pinned = changed('Deployment', 'query-depl', (body) => {
      body.spec.replicas = 2;
    });

    expect(autoscalerProblems(missing)).toEqual([expect.stringMatching(/HorizontalPodAutoscaler\/query-hpa: scaleTargetRef apps\/v1 Deployment\/query is not a workload of the manifests/)]);
    expect(autoscalerProblems(pinned)).toEqual([expect.stringMatching(/Deployment\/query-depl: sets replicas \(2\), which every apply would reset under query-hpa/)]);
  });

  // infra/k8s-jetstream/ copies four components of infra/k8s/ (rawYaml cannot patch a manifest):
  // the copies may differ only where the profile means them to.
  const profileDifferences = (body: Body, doc: ManifestDoc) => {
    if (doc.kind === 'NetworkPolicy') {
      // No push from the bus: every service pulls there.
      const spec = (body as MutableBody).spec;
      spec.ingress = spec.ingress?.filter((rule: { from?: Array<{ podSelector?: { matchLabels?: { app?: string } } }> }) => !rule.from?.some((peer) => peer.podSelector?.matchLabels?.app === 'event-bus'));
      if (spec.ingress?.length === 0) delete spec.ingress;
      return;
    }
    if (doc.kind !== 'Deployment') return;
    const spec = (body as MutableBody).spec;
    delete spec.replicas;
    for (const container of spec.template.spec.containers) container.env = container.env?.filter((variable: { name: string }) => variable.name !== 'EVENT_DELIVERY');
  };
  // The bus is not a copy: it is another program there (no disk, no single writer, NATS behind it).
  const copies = set.filter((doc) => !(doc.kind === 'Deployment' && doc.name === 'event-bus-depl') && !(doc.kind === 'NetworkPolicy' && doc.name === 'event-bus'));

  it('its copies of infra/k8s components differ from the originals only in replicas, EVENT_DELIVERY and the push the bus no longer makes', () => {
    expect(copies.filter((doc) => doc.file.startsWith('infra/k8s-jetstream/') && docs.some((original) => original.kind === doc.kind && original.name === doc.name)).length, 'documents compared').toBe(18);
    expect(copyDriftProblems(docs, copies, profileDifferences)).toEqual([]);
  });

  it('when an original changes and its copy does not, then the drift check names the field', () => {
    const changedOriginal = withChange('Deployment', 'comments-depl', (body) => {
      body.spec.template.spec.containers[0].resources.limits.memory = '512Mi';
    });

    expect(copyDriftProblems(changedOriginal, copies, profileDifferences)).toEqual([
      expect.stringMatching(/infra\/k8s-jetstream\/comments-depl\.yaml #2 Deployment\/comments-depl: spec\.template\.spec\.containers\[0\]\.resources\.limits\.memory differs from infra\/k8s\/comments-depl\.yaml #2/),
    ]);
  });
});
