import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IService } from 'kubernetes-models/v1/Service';
import { describeDoc, ofKind, type Body, type ManifestDoc, type SkaffoldRun } from './manifests.js';

/**
 * Cross-reference checks over a set of manifest documents. Each returns the problems it found, one
 * sentence each naming the file, document and field, so a test asserts `toEqual([])` and a failure
 * reads as a list of what to fix.
 */

interface ServiceTarget {
  name: string;
  ports: number[];
}

function servicesOf(docs: readonly ManifestDoc[]): Map<string, ServiceTarget> {
  return new Map(
    ofKind<IService>(docs, 'Service').map((doc) => [doc.name, { name: doc.name, ports: (doc.typed.spec?.ports ?? []).map((port) => port.port) }]),
  );
}

function checkServicePort(services: Map<string, ServiceTarget>, where: string, name: string | undefined, port: number | undefined): string[] {
  const service = name === undefined ? undefined : services.get(name);
  if (!service) return [`${where}: no Service named ${String(name)} (Services: ${[...services.keys()].join(', ')})`];
  if (port === undefined || !service.ports.includes(port)) return [`${where}: Service ${service.name} has no port ${String(port)} (ports: ${service.ports.join(', ')})`];
  return [];
}

/** Every Ingress backend and every HTTPRoute backendRef names a Service and one of its ports. */
export function backendProblems(docs: readonly ManifestDoc[]): string[] {
  const services = servicesOf(docs);
  const fromIngresses = ofKind<IIngress>(docs, 'Ingress').flatMap((doc) =>
    (doc.typed.spec?.rules ?? []).flatMap((rule, r) =>
      (rule.http?.paths ?? []).flatMap((entry, p) => {
        const where = `${describeDoc(doc)} rules[${r}].paths[${p}] (${entry.path})`;
        const port = entry.backend.service?.port;
        if (port?.name !== undefined) return [`${where}: use a port number, as the route table reads it (found port name ${port.name})`];
        return checkServicePort(services, where, entry.backend.service?.name, port?.number);
      }),
    ),
  );
  const fromRoutes = ofKind<IHTTPRoute>(docs, 'HTTPRoute').flatMap((doc) =>
    (doc.typed.spec.rules ?? []).flatMap((rule, r) =>
      (rule.backendRefs ?? []).flatMap((ref, b) => {
        const where = `${describeDoc(doc)} rules[${r}].backendRefs[${b}]`;
        if ((ref.kind ?? 'Service') !== 'Service' || (ref.group ?? '') !== '') return [`${where}: expected a core Service backend`];
        return checkServicePort(services, where, ref.name, ref.port);
      }),
    ),
  );
  return [...fromIngresses, ...fromRoutes];
}

/** Every HTTPRoute's parentRefs name a Gateway of the set, and its hostnames are ones a listener serves. */
export function gatewayParentProblems(docs: readonly ManifestDoc[]): string[] {
  const gateways = new Map(ofKind<{ spec: { listeners: Array<{ hostname?: string }> } }>(docs, 'Gateway').map((doc) => [doc.name, doc.typed]));
  return ofKind<IHTTPRoute>(docs, 'HTTPRoute').flatMap((doc) =>
    (doc.typed.spec.parentRefs ?? []).flatMap((ref) => {
      const gateway = gateways.get(ref.name);
      if (!gateway) return [`${describeDoc(doc)}: parentRef ${ref.name} is not a Gateway of the manifests`];
      const listenerHosts = gateway.spec.listeners.map((listener) => listener.hostname);
      return (doc.typed.spec.hostnames ?? [])
        .filter((host) => !listenerHosts.includes(host) && !listenerHosts.includes(undefined))
        .map((host) => `${describeDoc(doc)}: hostname ${host} is not served by Gateway ${ref.name} (listeners: ${listenerHosts.join(', ')})`);
    }),
  );
}

/** Each Service selects exactly one Deployment's pods, and its targetPort is a port their container declares. */
/** Each Service selects exactly one workload's pods, and its targetPort is a port their container declares. */
export function serviceSelectorProblems(docs: readonly ManifestDoc[]): string[] {
  const workloads = workloadsOf(docs);
  return ofKind<IService>(docs, 'Service').flatMap((doc) => {
    const selector = doc.typed.spec?.selector ?? {};
    if (Object.keys(selector).length === 0) return [`${describeDoc(doc)}: has no selector`];
    const selected = workloads.filter((workload) => selects(selector, podLabels(workload)));
    if (selected.length !== 1) {
      return [`${describeDoc(doc)}: selector ${JSON.stringify(selector)} matches the pod template of ${selected.length} workloads (${selected.map((w) => w.name).join(', ')}), expected 1`];
    }
    const [workload] = selected;
    const containerPorts = (workload!.typed.spec?.template.spec?.containers ?? []).flatMap((container) => container.ports ?? []);
    return (doc.typed.spec?.ports ?? []).flatMap((port) => {
      const target = port.targetPort ?? port.port;
      const declared = containerPorts.some((containerPort) => (typeof target === 'number' ? containerPort.containerPort === target : containerPort.name === target));
      return declared ? [] : [`${describeDoc(doc)}: targetPort ${target} of port ${port.port} is not a containerPort of ${workload!.kind} ${workload!.name}`];
    });
  });
}

const defaultPorts: Record<string, number> = { http: 80, https: 443, nats: 4222 };

/** Every `http://name:port` (or `nats://`) in a container's env names a Service of the set and one of its ports. */
export function envUrlProblems(docs: readonly ManifestDoc[]): string[] {
  const services = servicesOf(docs);
  return eachContainer(docs).flatMap(({ doc, container }) =>
    (container.env ?? []).flatMap((variable) =>
      [...(variable.value ?? '').matchAll(/\b(https?|nats):\/\/([a-z0-9.-]+)(?::(\d+))?/gi)].flatMap((match) =>
        checkServicePort(services, `${describeDoc(doc)} container ${container.name} env ${variable.name} (${match[0]})`, match[2], match[3] ? Number(match[3]) : defaultPorts[match[1]!.toLowerCase()]),
      ),
    ),
  );
}

/**
 * Every secretKeyRef names a Secret of the manifests and one of its keys, and every container that
 * talks to the bus (or is the bus) gets EVENT_BUS_SECRET from the same Secret.
 */
export function secretRefProblems(docs: readonly ManifestDoc[]): string[] {
  const secrets = new Map(
    ofKind<{ data?: Record<string, string>; stringData?: Record<string, string> }>(docs, 'Secret').map((doc) => [doc.name, new Set(Object.keys({ ...doc.typed.data, ...doc.typed.stringData }))]),
  );
  const sources = new Set<string>();
  const problems = eachContainer(docs).flatMap(({ doc, container }) => {
    const where = `${describeDoc(doc)} container ${container.name}`;
    const env = container.env ?? [];
    const found: string[] = [];
    for (const variable of env) {
      const ref = variable.valueFrom?.secretKeyRef;
      if (!ref) continue;
      if (!secrets.get(ref.name ?? '')?.has(ref.key)) found.push(`${where} env ${variable.name}: Secret ${ref.name} has no key ${ref.key}`);
      if (variable.name === 'EVENT_BUS_SECRET') sources.add(`${ref.name}/${ref.key}`);
    }
    const usesBus = isBus(container) || isConsumer(container);
    if (usesBus && !env.some((variable) => variable.name === 'EVENT_BUS_SECRET' && variable.valueFrom?.secretKeyRef)) found.push(`${where}: talks to the bus without EVENT_BUS_SECRET from a Secret`);
    return found;
  });
  if (sources.size > 1) problems.push(`EVENT_BUS_SECRET comes from different Secrets: ${[...sources].join(', ')}`);
  return problems;
}

/** Every ServiceAccount a pod runs as is in the set. */
export function serviceAccountProblems(docs: readonly ManifestDoc[]): string[] {
  const accounts = new Set(ofKind(docs, 'ServiceAccount').map((doc) => doc.name));
  return workloadsOf(docs).flatMap((doc) => {
    const account = doc.typed.spec?.template.spec?.serviceAccountName;
    return account === undefined || accounts.has(account) ? [] : [`${describeDoc(doc)}: serviceAccountName ${account} is not a ServiceAccount of the manifests`];
  });
}

/** Ours: the images this repository builds (blog/…); anything else is pulled from a registry. */
export const isOurImage = (image: string): boolean => image.startsWith('blog/');

/**
 * What a Skaffold run builds against what its workloads (`docs`, the run's manifests) run: each of
 * our images built once and used by a workload, no workload on one of our images that the run does
 * not build (Skaffold would deploy it untagged, and the cluster would look for it in a registry), and
 * every other image pinned to a version.
 */
export function imageProblems(run: Pick<SkaffoldRun, 'name' | 'artifacts'>, docs: readonly ManifestDoc[]): string[] {
  const built = run.artifacts.map((artifact) => artifact.image);
  const containers = eachContainer(docs).map(({ doc, container }) => ({ where: `${describeDoc(doc)} container ${container.name}`, image: container.image ?? '' }));
  const used = new Set(containers.map((container) => container.image));
  return [
    ...built.filter((image, index) => built.indexOf(image) !== index).map((image) => `${run.name}: builds ${image} more than once`),
    ...built.filter((image, index) => built.indexOf(image) === index && !used.has(image)).map((image) => `${run.name}: builds ${image}, which no workload of its manifests runs`),
    ...containers.filter(({ image }) => isOurImage(image) && !built.includes(image)).map(({ where, image }) => `${where}: runs ${image}, which ${run.name} does not build`),
    ...containers.filter(({ image }) => !isOurImage(image) && !/^[a-z0-9./-]+:\d[\w.-]*$/.test(image)).map(({ where, image }) => `${where}: pulls ${image || 'no image'} without a version tag`),
  ];
}

// --- Workloads ----------------------------------------------------------------------------------

/** A Deployment or a StatefulSet: what runs pods. */
export type Workload = ManifestDoc & { typed: IDeployment | IStatefulSet };

export function workloadsOf(docs: readonly ManifestDoc[]): Workload[] {
  return docs.filter((doc) => doc.kind === 'Deployment' || doc.kind === 'StatefulSet').map((doc) => ({ ...doc, typed: doc.body as unknown as IDeployment | IStatefulSet }));
}

const podLabels = (workload: Workload): Record<string, string> => workload.typed.spec?.template.metadata?.labels ?? {};

const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([key, value]) => labels[key] === value);

export function eachContainer(docs: readonly ManifestDoc[]): Array<{ doc: Workload; container: IContainer }> {
  return workloadsOf(docs).flatMap((doc) => {
    const pod = doc.typed.spec?.template.spec;
    return [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])].map((container) => ({ doc, container }));
  });
}

/** A plain env value of a container, undefined when unset or taken from elsewhere (valueFrom). */
export function envValue(container: IContainer, name: string): string | undefined {
  return container.env?.find((variable) => variable.name === name)?.value;
}

const hasEnv = (container: IContainer, name: string) => (container.env ?? []).some((variable) => variable.name === name);

/** The event bus: it keeps the log (EVENT_STORE) and pushes it (SUBSCRIBERS). */
const isBus = (container: IContainer) => hasEnv(container, 'SUBSCRIBERS') || hasEnv(container, 'EVENT_STORE');

/** A service that reads the bus's log. */
const isConsumer = (container: IContainer) => hasEnv(container, 'EVENT_BUS_URL');

function autoscalersOf(docs: readonly ManifestDoc[], workload: Workload) {
  return ofKind<IHorizontalPodAutoscaler>(docs, 'HorizontalPodAutoscaler').filter(
    (doc) => doc.typed.spec?.scaleTargetRef.kind === workload.kind && doc.typed.spec.scaleTargetRef.name === workload.name,
  );
}

/** The fewest replicas a workload runs: its autoscaler's minReplicas when one scales it, else spec.replicas (default 1). */
export function minimumReplicas(docs: readonly ManifestDoc[], workload: Workload): number {
  const [autoscaler] = autoscalersOf(docs, workload);
  return autoscaler ? (autoscaler.typed.spec?.minReplicas ?? 1) : (workload.typed.spec?.replicas ?? 1);
}

/** The most replicas a workload may run: its autoscaler's maxReplicas, else spec.replicas (default 1). */
export function maximumReplicas(docs: readonly ManifestDoc[], workload: Workload): number {
  const [autoscaler] = autoscalersOf(docs, workload);
  return autoscaler ? (autoscaler.typed.spec?.maxReplicas ?? 1) : (workload.typed.spec?.replicas ?? 1);
}

/** The hardening and health checks every container of every workload must have (docs/STYLE "Manifests and images"). */
export function podHardeningProblems(docs: readonly ManifestDoc[]): string[] {
  const podProblems = workloadsOf(docs).flatMap((doc) => {
    const pod = doc.typed.spec?.template.spec;
    const problems: string[] = [];
    if (pod?.automountServiceAccountToken !== false) problems.push('automountServiceAccountToken is not false');
    const grace = pod?.terminationGracePeriodSeconds;
    // The services give themselves 8 s to shut down (SHUTDOWN_TIMEOUT_MS): the kubelet must wait longer.
    if (grace === undefined || grace <= 8) problems.push(`terminationGracePeriodSeconds ${String(grace)} is not above 8`);
    return problems.map((problem) => `${describeDoc(doc)}: ${problem}`);
  });
  const containerProblems = eachContainer(docs).flatMap(({ doc, container }) => {
    const pod = doc.typed.spec?.template.spec;
    const security = container.securityContext;
    const problems: string[] = [];
    // Our services answer /readyz; a server we do not build (NATS) has one health endpoint, asked
    // different questions in its query string.
    const readyPath = (container.image ?? '').startsWith('blog/') ? '/readyz' : '/healthz';
    const probePath = (probe: IContainer['livenessProbe']) => probe?.httpGet?.path?.split('?')[0];
    if (probePath(container.livenessProbe) !== '/healthz') problems.push('liveness probe is not GET /healthz');
    if (probePath(container.readinessProbe) !== readyPath) problems.push(`readiness probe is not GET ${readyPath}`);
    if (!container.startupProbe) problems.push('has no startup probe');
    for (const kind of ['requests', 'limits'] as const) {
      const amounts = container.resources?.[kind];
      if (amounts?.cpu === undefined || amounts.memory === undefined) problems.push(`resources.${kind} lacks cpu or memory`);
    }
    if ((security?.runAsNonRoot ?? pod?.securityContext?.runAsNonRoot) !== true) problems.push('runAsNonRoot is not true (container or pod)');
    if (security?.readOnlyRootFilesystem !== true) problems.push('readOnlyRootFilesystem is not true');
    if (security?.allowPrivilegeEscalation !== false) problems.push('allowPrivilegeEscalation is not false');
    if (!(security?.capabilities?.drop ?? []).includes('ALL')) problems.push('capabilities do not drop ALL');
    if ((security?.seccompProfile ?? pod?.securityContext?.seccompProfile)?.type !== 'RuntimeDefault') problems.push('seccompProfile is not RuntimeDefault (container or pod)');
    const tmp = (container.volumeMounts ?? []).find((mount) => mount.mountPath === '/tmp');
    const tmpVolume = (pod?.volumes ?? []).find((volume) => volume.name === tmp?.name);
    if (!tmpVolume?.emptyDir) problems.push('has no emptyDir mounted at /tmp (its only writable place under a read-only root)');
    return problems.map((problem) => `${describeDoc(doc)} container ${container.name}: ${problem}`);
  });
  return [...podProblems, ...containerProblems];
}

/** The volume a workload's container mounts at a path, if any. */
export function volumeAt(doc: Workload, mountPath: string) {
  const pod = doc.typed.spec?.template.spec;
  const mount = (pod?.containers ?? []).flatMap((container) => container.volumeMounts ?? []).find((m) => m.mountPath === mountPath);
  return (pod?.volumes ?? []).find((volume) => volume.name === mount?.name);
}

// --- Replicas, budgets and autoscalers ------------------------------------------------------------

/**
 * Every PodDisruptionBudget covers the pods of exactly one workload that runs two replicas or more,
 * and lets a drain evict some but not all of them; every workload that runs two or more has exactly
 * one budget (the eviction API refuses pods that two budgets cover). On one replica a budget either
 * blocks every drain or protects nothing, so it is not asked for.
 */
export function disruptionBudgetProblems(docs: readonly ManifestDoc[]): string[] {
  const workloads = workloadsOf(docs);
  const budgetsOf = new Map<Workload, string[]>(workloads.map((workload) => [workload, []]));
  const problems = ofKind<IPodDisruptionBudget>(docs, 'PodDisruptionBudget').flatMap((doc) => {
    const where = describeDoc(doc);
    const spec = doc.typed.spec;
    const selector = spec?.selector?.matchLabels ?? {};
    if (Object.keys(selector).length === 0) return [`${where}: has no matchLabels selector`];
    const selected = workloads.filter((workload) => selects(selector, podLabels(workload)));
    if (selected.length !== 1) return [`${where}: selector ${JSON.stringify(selector)} matches the pods of ${selected.length} workloads (${selected.map((w) => w.name).join(', ')}), expected 1`];
    const target = selected[0]!;
    budgetsOf.get(target)!.push(doc.name);
    const replicas = minimumReplicas(docs, target);
    if (replicas < 2) return [`${where}: ${target.kind} ${target.name} runs ${replicas} replica: a budget would block every drain or protect nothing`];
    const { minAvailable, maxUnavailable } = spec ?? {};
    if (typeof minAvailable === 'string' || typeof maxUnavailable === 'string') return [`${where}: use a number of pods, not a percentage (rounding at ${replicas} replicas decides too much)`];
    if ((minAvailable === undefined) === (maxUnavailable === undefined)) return [`${where}: set exactly one of minAvailable and maxUnavailable`];
    const evictable = maxUnavailable ?? replicas - minAvailable!;
    if (evictable < 1) return [`${where}: lets no pod of ${target.name} be evicted at ${replicas} replicas: a drain would hang`];
    if (evictable >= replicas) return [`${where}: lets every pod of ${target.name} be evicted at once (${replicas} replicas)`];
    return [];
  });
  for (const [workload, budgets] of budgetsOf) {
    const replicas = minimumReplicas(docs, workload);
    if (replicas >= 2 && budgets.length === 0) problems.push(`${describeDoc(workload)}: runs ${replicas} replicas and no PodDisruptionBudget covers it`);
    if (budgets.length > 1) problems.push(`${describeDoc(workload)}: covered by ${budgets.length} PodDisruptionBudgets (${budgets.join(', ')}): evictions would fail`);
  }
  return problems;
}

/**
 * Every HorizontalPodAutoscaler scales a workload of the set, alone, between sane bounds; the
 * workload leaves `replicas` to it (each apply would reset the count), and every container requests
 * the resources whose utilization it targets (utilization is a share of the request).
 */
export function autoscalerProblems(docs: readonly ManifestDoc[]): string[] {
  const workloads = workloadsOf(docs);
  return ofKind<IHorizontalPodAutoscaler>(docs, 'HorizontalPodAutoscaler').flatMap((doc) => {
    const where = describeDoc(doc);
    const spec = doc.typed.spec;
    const ref = spec.scaleTargetRef;
    const target = workloads.find((workload) => workload.apiVersion === ref.apiVersion && workload.kind === ref.kind && workload.name === ref.name);
    if (!target) return [`${where}: scaleTargetRef ${ref.apiVersion ?? '(no apiVersion)'} ${ref.kind}/${ref.name} is not a workload of the manifests`];
    const problems: string[] = [];
    if ((spec.minReplicas ?? 1) > spec.maxReplicas) problems.push(`${where}: minReplicas ${spec.minReplicas} is above maxReplicas ${spec.maxReplicas}`);
    if (autoscalersOf(docs, target).length > 1) problems.push(`${where}: ${target.name} has more than one autoscaler`);
    if (target.typed.spec?.replicas !== undefined) problems.push(`${describeDoc(target)}: sets replicas (${target.typed.spec.replicas}), which every apply would reset under ${doc.name}: leave it out`);
    for (const metric of spec.metrics ?? []) {
      if (metric.type !== 'Resource' || metric.resource?.target.type !== 'Utilization') continue;
      const resource = metric.resource.name;
      for (const container of target.typed.spec?.template.spec?.containers ?? []) {
        if (container.resources?.requests?.[resource] === undefined) problems.push(`${where}: targets ${resource} utilization, but container ${container.name} of ${target.name} requests no ${resource}`);
      }
    }
    return problems;
  });
}

// --- The event log and its readers ----------------------------------------------------------------

/**
 * How each service that reads the log gets it. Push (EVENT_DELIVERY unset or `push`): the bus
 * POSTs to the service's Service, so a bus must list that Service in SUBSCRIBERS, and there must be
 * one replica (the Service hands each event to one of them). Pull: each replica reads GET /events
 * itself, and no bus should push to it as well.
 */
export function deliveryProblems(docs: readonly ManifestDoc[]): string[] {
  const services = ofKind<IService>(docs, 'Service');
  const pushedTo = new Set(
    eachContainer(docs).flatMap(({ container }) => [...(envValue(container, 'SUBSCRIBERS') ?? '').matchAll(/=https?:\/\/([a-z0-9.-]+)/gi)].map((match) => match[1]!)),
  );
  return eachContainer(docs)
    .filter(({ container }) => isConsumer(container))
    .flatMap(({ doc, container }) => {
      const where = `${describeDoc(doc)} container ${container.name}`;
      const mode = envValue(container, 'EVENT_DELIVERY') ?? 'push';
      const own = services.filter((service) => selects(service.typed.spec?.selector ?? {}, podLabels(doc))).map((service) => service.name);
      const listed = own.filter((name) => pushedTo.has(name));
      if (mode === 'push') {
        const problems: string[] = [];
        if (listed.length === 0) problems.push(`${where}: push delivery, but no bus lists its Service (${own.join(', ') || 'none'}) in SUBSCRIBERS: it would get no events`);
        const most = maximumReplicas(docs, doc);
        if (most > 1) problems.push(`${where}: push delivery with up to ${most} replicas: each event would reach one of them; set EVENT_DELIVERY=pull`);
        return problems;
      }
      if (mode === 'pull') return listed.length > 0 ? [`${where}: pulls, yet a bus also pushes to ${listed.join(', ')}: remove it from SUBSCRIBERS`] : [];
      return [`${where}: EVENT_DELIVERY ${mode} is neither push nor pull`];
    });
}

/**
 * Where the bus keeps the log decides how it may run. In a file (EVENT_STORE unset or `file`): one
 * replica, replaced with Recreate, DATA_DIR on a PersistentVolumeClaim of the set, so there is one
 * writer and the log outlives the pod. In JetStream (`nats://…`): no volume claim at all (the bus is
 * a stateless front), and no more stream replicas (EVENT_STREAM_REPLICAS) than servers behind the
 * NATS Service it names.
 */
export function eventStoreProblems(docs: readonly ManifestDoc[]): string[] {
  const claims = new Set(ofKind(docs, 'PersistentVolumeClaim').map((doc) => doc.name));
  const services = ofKind<IService>(docs, 'Service');
  return eachContainer(docs)
    .filter(({ container }) => isBus(container))
    .flatMap(({ doc, container }) => {
      const where = describeDoc(doc);
      const store = envValue(container, 'EVENT_STORE') ?? 'file';
      const problems: string[] = [];
      if (store === 'file') {
        const most = maximumReplicas(docs, doc);
        if (most !== 1) problems.push(`${where}: keeps the log in a file (EVENT_STORE ${store}) with up to ${most} replicas: it needs a single writer`);
        if (doc.kind !== 'Deployment' || (doc.typed as IDeployment).spec?.strategy?.type !== 'Recreate') problems.push(`${where}: keeps the log in a file, so it must be a Deployment with the Recreate strategy (a rolling update runs two writers)`);
        const dataDir = envValue(container, 'DATA_DIR') ?? '/data';
        const claim = volumeAt(doc, dataDir)?.persistentVolumeClaim?.claimName;
        if (!claim || !claims.has(claim)) problems.push(`${where}: keeps the log in a file, but DATA_DIR ${dataDir} is not on a PersistentVolumeClaim of the manifests`);
        return problems;
      }
      const servers = store.split(',').map((server) => server.trim());
      if (!servers.every((server) => /^nats:\/\/[a-z0-9.-]+(:\d+)?$/i.test(server))) return [`${where}: EVENT_STORE ${store} is neither file nor nats://host:port[,...]`];
      const mounted = (doc.typed.spec?.template.spec?.volumes ?? []).filter((volume) => volume.persistentVolumeClaim).map((volume) => volume.name);
      if (mounted.length > 0 || doc.kind === 'StatefulSet') problems.push(`${where}: keeps the log in JetStream, yet has storage of its own (${mounted.join(', ') || 'a StatefulSet'}): the bus is stateless there`);
      const streamReplicas = Number(envValue(container, 'EVENT_STREAM_REPLICAS') ?? '1');
      for (const server of servers) {
        const host = new URL(server).hostname;
        const service = services.find((candidate) => candidate.name === host);
        if (!service) continue; // envUrlProblems names it.
        const natsServers = workloadsOf(docs)
          .filter((workload) => selects(service.typed.spec?.selector ?? {}, podLabels(workload)))
          .reduce((sum, workload) => sum + minimumReplicas(docs, workload), 0);
        if (streamReplicas > natsServers) problems.push(`${where}: EVENT_STREAM_REPLICAS ${streamReplicas}, but Service ${host} has ${natsServers} NATS servers behind it`);
      }
      return problems;
    });
}

/**
 * For a set meant to lose any one pod without a pause: the bus and every service that reads its log
 * run two replicas or more, and those services pull the log (so every replica sees every event).
 */
export function scaleOutProblems(docs: readonly ManifestDoc[]): string[] {
  return eachContainer(docs)
    .filter(({ container }) => isBus(container) || isConsumer(container))
    .flatMap(({ doc, container }) => {
      const problems: string[] = [];
      const fewest = minimumReplicas(docs, doc);
      if (fewest < 2) problems.push(`${describeDoc(doc)}: runs ${fewest} replica, expected 2 or more`);
      const mode = envValue(container, 'EVENT_DELIVERY');
      if (isConsumer(container) && mode !== 'pull') problems.push(`${describeDoc(doc)} container ${container.name}: EVENT_DELIVERY is ${mode ?? 'unset (push)'}, expected pull`);
      return problems;
    });
}

// --- NATS ---------------------------------------------------------------------------------------

/**
 * Each StatefulSet that runs NATS from a nats.conf in a ConfigMap forms one cluster and keeps
 * JetStream durable: three servers or more and an odd number (a quorum survives one loss); the
 * cluster routes name every pod of the set, through its headless Service, on the cluster port both
 * declare; server_name is the pod's name (unique and stable, as JetStream's Raft groups need); the
 * store_dir is on a volumeClaimTemplate, so a replaced pod finds its files again.
 */
export function natsClusterProblems(docs: readonly ManifestDoc[]): string[] {
  const configMaps = new Map(ofKind<IConfigMap>(docs, 'ConfigMap').map((doc) => [doc.name, doc.typed.data ?? {}]));
  const services = ofKind<IService>(docs, 'Service');
  return ofKind<IStatefulSet>(docs, 'StatefulSet').flatMap((doc) => {
    const spec = doc.typed.spec;
    const pod = spec?.template.spec;
    return (pod?.containers ?? []).flatMap((container) => {
      const args = container.args ?? [];
      const at = args.indexOf('--config');
      if (at < 0) return [];
      const where = `${describeDoc(doc)} container ${container.name}`;
      const configPath = args[at + 1] ?? '';
      const mount = (container.volumeMounts ?? []).find((candidate) => configPath.startsWith(`${candidate.mountPath}/`));
      const configMap = (pod?.volumes ?? []).find((volume) => volume.name === mount?.name)?.configMap?.name;
      const conf = configMaps.get(configMap ?? '')?.[configPath.slice((mount?.mountPath.length ?? 0) + 1)];
      if (conf === undefined) return [`${where}: --config ${configPath} is not a key of a ConfigMap of the manifests mounted there`];

      const problems: string[] = [];
      const replicas = spec?.replicas ?? 1;
      if (replicas < 3 || replicas % 2 === 0) problems.push(`${where}: runs ${replicas} server(s); JetStream needs an odd number, 3 or more, to keep a quorum when one is lost`);

      const serverNameVariable = /^\s*server_name\s*[:=]\s*\$(\w+)\s*$/m.exec(conf)?.[1];
      const fromPodName = (container.env ?? []).find((variable) => variable.name === serverNameVariable)?.valueFrom?.fieldRef?.fieldPath === 'metadata.name';
      if (!fromPodName) problems.push(`${where}: server_name is not a variable the container sets to its pod's name (metadata.name)`);

      const cluster = /^cluster\s*\{([\s\S]*?)^\}/m.exec(conf)?.[1] ?? '';
      const clusterPort = Number(/^\s*port\s*[:=]\s*(\d+)/m.exec(cluster)?.[1]);
      const headless = services.find((service) => service.name === spec?.serviceName);
      if (!headless || headless.typed.spec?.clusterIP !== 'None') problems.push(`${where}: serviceName ${String(spec?.serviceName)} is not a headless Service of the manifests`);
      else if (!(headless.typed.spec.ports ?? []).some((port) => port.port === clusterPort)) problems.push(`${where}: headless Service ${headless.name} has no cluster port ${clusterPort}`);
      if (!(container.ports ?? []).some((port) => port.containerPort === clusterPort)) problems.push(`${where}: the cluster port ${clusterPort} is not a containerPort`);
      const routes = [...cluster.matchAll(/nats:\/\/([^\s,\]]+)/g)].map((match) => match[1]!).sort();
      const expected = Array.from({ length: replicas }, (_, ordinal) => `${doc.name}-${ordinal}.${String(spec?.serviceName)}:${clusterPort}`).sort();
      if (routes.join() !== expected.join()) problems.push(`${where}: cluster routes ${routes.join(', ') || '(none)'} are not the pods of the StatefulSet (${expected.join(', ')})`);

      const storeDir = /^\s*store_dir\s*[:=]\s*"?([^"\s]+)"?/m.exec(conf)?.[1];
      const storeMount = (container.volumeMounts ?? []).find((candidate) => candidate.mountPath === storeDir);
      const templates = (spec?.volumeClaimTemplates ?? []).map((template) => template.metadata?.name);
      if (!storeMount || !templates.includes(storeMount.name)) problems.push(`${where}: JetStream's store_dir ${String(storeDir)} is not a mounted volumeClaimTemplate`);
      return problems;
    });
  });
}

/**
 * The `authorization { ... }` block of a nats.conf, braces matched, or undefined when it has none:
 * who may connect, and what each user may do.
 */
export function authorizationBlock(conf: string): string | undefined {
  const start = /^\s*authorization\s*\{/m.exec(conf);
  if (!start) return undefined;
  let depth = 0;
  for (let at = conf.indexOf('{', start.index); at < conf.length; at += 1) {
    if (conf[at] === '{') depth += 1;
    else if (conf[at] === '}' && (depth -= 1) === 0) return conf.slice(start.index, at + 1);
  }
  return undefined;
}

/**
 * Only the bus may use JetStream. Each NATS server's nats.conf has an authorization block whose
 * password variables the container takes from Secrets; each bus on nats:// connects as one of its
 * users (NATS_USER) with that user's password from the same Secret key (NATS_PASSWORD), and the
 * user's permissions name the bus's stream (EVENT_STREAM).
 */
export function natsAccessProblems(docs: readonly ManifestDoc[]): string[] {
  const configMaps = new Map(ofKind<IConfigMap>(docs, 'ConfigMap').map((doc) => [doc.name, doc.typed.data ?? {}]));
  const servers = ofKind<IStatefulSet>(docs, 'StatefulSet').flatMap((doc) =>
    (doc.typed.spec?.template.spec?.containers ?? [])
      .filter((container) => (container.args ?? []).includes('--config'))
      .map((container) => {
        const configMap = (doc.typed.spec?.template.spec?.volumes ?? []).map((volume) => volume.configMap?.name).find(Boolean);
        return { doc, container, conf: Object.values(configMaps.get(configMap ?? '') ?? {}).join('\n') };
      }),
  );
  const problems: string[] = [];
  const users = new Map<string, { password: string; block: string; where: string }>();
  for (const { doc, container, conf } of servers) {
    const where = `${describeDoc(doc)} container ${container.name}`;
    const block = authorizationBlock(conf);
    if (!block) {
      problems.push(`${where}: nats.conf has no authorization block: any client may connect`);
      continue;
    }
    if (/no_auth_user/.test(conf)) problems.push(`${where}: nats.conf sets no_auth_user: clients without credentials get in`);
    for (const match of block.matchAll(/user:\s*"?([\w-]+)"?\s+password:\s*(\S+)/g)) {
      const variable = /^\$(\w+)$/.exec(match[2]!)?.[1];
      const ref = (container.env ?? []).find((candidate) => candidate.name === variable)?.valueFrom?.secretKeyRef;
      if (!variable || !ref) problems.push(`${where}: the password of user ${match[1]} is not a variable the container takes from a Secret`);
      else users.set(match[1]!, { password: `${ref.name}/${ref.key}`, block, where });
    }
  }
  for (const { doc, container } of eachContainer(docs).filter(({ container }) => (envValue(container, 'EVENT_STORE') ?? 'file').startsWith('nats://'))) {
    const where = `${describeDoc(doc)} container ${container.name}`;
    const user = users.get(envValue(container, 'NATS_USER') ?? '');
    const ref = (container.env ?? []).find((variable) => variable.name === 'NATS_PASSWORD')?.valueFrom?.secretKeyRef;
    if (!user) {
      problems.push(`${where}: NATS_USER ${String(envValue(container, 'NATS_USER'))} is not a user of the NATS servers (${[...users.keys()].join(', ') || 'none'})`);
      continue;
    }
    if (!ref || `${ref.name}/${ref.key}` !== user.password) problems.push(`${where}: NATS_PASSWORD is not from ${user.password}, where the NATS servers take that user's password`);
    const stream = envValue(container, 'EVENT_STREAM') ?? 'BLOG_EVENTS';
    for (const subject of [`${stream}.events`, `$JS.API.STREAM.INFO.${stream}`]) if (!user.block.includes(`"${subject}"`)) problems.push(`${where}: ${user.where} does not let it use ${subject} (EVENT_STREAM ${stream})`);
  }
  return problems;
}

// --- Network policies -----------------------------------------------------------------------------

/**
 * A party to a connection: a workload of the set (its pods), or one outside it that the policies
 * must tell apart: the entry's proxies, the cluster DNS, strangers.
 */
interface Party {
  name: string;
  /** A workload of the set: its policies apply. */
  workload?: Workload;
  namespace: Record<string, string>;
  labels: Record<string, string>;
  /** Only an address outside the cluster: matched by ipBlock, never by a selector. */
  external?: true;
  ports: Array<{ name?: string | undefined; port: number; protocol: string }>;
}

type Selector = { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> };
interface PolicyPort {
  port?: number | string;
  endPort?: number;
  protocol?: string;
}
interface PolicyPeer {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: { cidr: string };
}
interface PolicySpec {
  podSelector: Selector;
  policyTypes?: Array<'Ingress' | 'Egress'>;
  ingress?: Array<{ from?: PolicyPeer[]; ports?: PolicyPort[] }>;
  egress?: Array<{ to?: PolicyPeer[]; ports?: PolicyPort[] }>;
}

/** The namespace the manifests are applied to (they name none). */
const ownNamespace = { 'kubernetes.io/metadata.name': 'the-blog' };
const namespaceNamed = (name: string) => ({ 'kubernetes.io/metadata.name': name });

/** Where each entry's proxies run: the namespace its controller installs into by default. */
const entryNamespaces: Record<string, string> = { 'ingress nginx': 'ingress-nginx', 'gateway eg': 'envoy-gateway-system' };

export const clusterDns: Party = { name: 'the cluster DNS', namespace: namespaceNamed('kube-system'), labels: { 'k8s-app': 'kube-dns' }, ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] };
/** Parties no policy should let in or out: a pod of the namespace that is not ours, a pod of another namespace wearing our labels, the internet. */
const strangers: Party[] = [
  { name: 'another pod of the namespace', namespace: ownNamespace, labels: { app: 'debug' }, ports: [{ port: 8080, protocol: 'TCP' }] },
  ...['event-bus', 'nats'].map((app) => ({ name: `a pod labelled app=${app} in another namespace`, namespace: namespaceNamed('elsewhere'), labels: { app }, ports: [{ port: 4222, protocol: 'TCP' }] })),
  { name: 'an address outside the cluster', namespace: {}, labels: {}, external: true, ports: [{ port: 443, protocol: 'TCP' }] },
];

function matchesSelector(selector: Selector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  return (
    byLabels &&
    (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
      if (operator === 'In') return labels[key] !== undefined && values.includes(labels[key]);
      if (operator === 'NotIn') return labels[key] === undefined || !values.includes(labels[key]);
      if (operator === 'Exists') return labels[key] !== undefined;
      if (operator === 'DoesNotExist') return labels[key] === undefined;
      return false;
    })
  );
}

function matchesPeer(peer: PolicyPeer, party: Party): boolean {
  if (peer.ipBlock) return party.external === true;
  if (party.external) return false;
  // A pod selector alone means pods of the policy's own namespace.
  const namespaceMatches = peer.namespaceSelector ? matchesSelector(peer.namespaceSelector, party.namespace) : matchesSelector({ matchLabels: ownNamespace }, party.namespace);
  return namespaceMatches && matchesSelector(peer.podSelector, party.labels);
}

function matchesPort(ports: PolicyPort[] | undefined, port: Party['ports'][number]): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((rule) => {
    if ((rule.protocol ?? 'TCP') !== port.protocol) return false;
    if (rule.port === undefined) return true;
    if (typeof rule.port === 'string') return rule.port === port.name;
    return port.port >= rule.port && port.port <= (rule.endPort ?? rule.port);
  });
}

const policiesOf = (docs: readonly ManifestDoc[]) => ofKind<{ spec: PolicySpec }>(docs, 'NetworkPolicy');
const policyTypes = (spec: PolicySpec) => spec.policyTypes ?? (spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);

/** Whether the policies of `party`'s namespace let it open (Egress) or take (Ingress) this connection: allowed unless a policy isolates it. */
function lets(docs: readonly ManifestDoc[], party: Party, direction: 'Ingress' | 'Egress', other: Party, port: Party['ports'][number], portOwner: Party): boolean {
  if (!party.workload) return true;
  const isolating = policiesOf(docs).filter((policy) => policyTypes(policy.typed.spec).includes(direction) && matchesSelector(policy.typed.spec.podSelector, party.labels));
  if (isolating.length === 0) return true;
  return isolating.some((policy) => {
    const rules = direction === 'Ingress' ? (policy.typed.spec.ingress ?? []).map((rule) => ({ peers: rule.from, ports: rule.ports })) : (policy.typed.spec.egress ?? []).map((rule) => ({ peers: rule.to, ports: rule.ports }));
    return rules.some((rule) => (!rule.peers || rule.peers.length === 0 || rule.peers.some((peer) => matchesPeer(peer, other))) && matchesPort(rule.ports, { ...port, name: portOwner.ports.find((candidate) => candidate.port === port.port && candidate.protocol === port.protocol)?.name }));
  });
}

const partyOf = (parties: readonly Party[], doc: ManifestDoc): Party => parties.find((party) => party.workload?.file === doc.file && party.workload.position === doc.position)!;

const flowName = (from: Party, to: Party, port: Party['ports'][number]) => `${from.name} -> ${to.name}:${port.port}/${port.protocol}`;

function workloadParty(workload: Workload): Party {
  const ports = (workload.typed.spec?.template.spec?.containers ?? []).flatMap((container) => (container.ports ?? []).map((port) => ({ name: port.name, port: port.containerPort, protocol: port.protocol ?? 'TCP' })));
  return { name: `${workload.kind}/${workload.name}`, workload, namespace: ownNamespace, labels: podLabels(workload), ports };
}

function entryParties(docs: readonly ManifestDoc[]): Map<string, Party> {
  const parties = new Map<string, Party>();
  const add = (key: string) => {
    const namespace = entryNamespaces[key];
    if (namespace && !parties.has(key)) parties.set(key, { name: `the ${key} proxies (namespace ${namespace})`, namespace: namespaceNamed(namespace), labels: {}, ports: [] });
  };
  for (const ingress of ofKind<IIngress>(docs, 'Ingress')) add(`ingress ${ingress.typed.spec?.ingressClassName ?? ''}`);
  for (const gateway of ofKind<{ spec: { gatewayClassName: string } }>(docs, 'Gateway')) add(`gateway ${gateway.typed.spec.gatewayClassName}`);
  return parties;
}

/** The pods behind a Service and the container port a Service port leads to. */
function serviceTarget(docs: readonly ManifestDoc[], parties: readonly Party[], name: string | undefined, port: number | undefined): { party: Party; port: Party['ports'][number] } | undefined {
  const service = ofKind<IService>(docs, 'Service').find((doc) => doc.name === name);
  const servicePort = (service?.typed.spec?.ports ?? []).find((candidate) => candidate.port === port);
  const party = parties.find((candidate) => candidate.workload && selects(service?.typed.spec?.selector ?? { '': '' }, candidate.labels));
  if (!servicePort || !party) return undefined;
  const target = servicePort.targetPort ?? servicePort.port;
  const containerPort = party.ports.find((candidate) => (typeof target === 'number' ? candidate.port === target : candidate.name === target));
  return containerPort && { party, port: containerPort };
}

/**
 * The connections the design needs, each with why: the entry to the Services it routes to (Ingress
 * backends, HTTPRoute backendRefs), every workload to each Service its environment names
 * (EVENT_BUS_URL, SUBSCRIBERS, EVENT_STORE...), the NATS servers to each other (cluster routes), and
 * the DNS for whoever names a Service.
 */
export function neededFlows(docs: readonly ManifestDoc[]): Map<string, string> {
  const parties = workloadsOf(docs).map(workloadParty);
  const entries = entryParties(docs);
  const needed = new Map<string, string>();
  const need = (from: Party, to: ReturnType<typeof serviceTarget>, why: string) => {
    if (to) needed.set(flowName(from, to.party, to.port), why);
  };
  const needDns = (from: Party) => clusterDns.ports.forEach((port) => needed.set(flowName(from, clusterDns, port), `${from.name} names Services`));
  for (const ingress of ofKind<IIngress>(docs, 'Ingress')) {
    const from = entries.get(`ingress ${ingress.typed.spec?.ingressClassName ?? ''}`);
    for (const path of (ingress.typed.spec?.rules ?? []).flatMap((rule) => rule.http?.paths ?? [])) {
      if (from) need(from, serviceTarget(docs, parties, path.backend.service?.name, path.backend.service?.port?.number), `${describeDoc(ingress)} ${path.path}`);
    }
  }
  for (const route of ofKind<IHTTPRoute>(docs, 'HTTPRoute')) {
    for (const parent of route.typed.spec.parentRefs ?? []) {
      const gateway = ofKind<{ spec: { gatewayClassName: string } }>(docs, 'Gateway').find((doc) => doc.name === parent.name);
      const from = gateway && entries.get(`gateway ${gateway.typed.spec.gatewayClassName}`);
      for (const ref of (route.typed.spec.rules ?? []).flatMap((rule) => rule.backendRefs ?? [])) if (from) need(from, serviceTarget(docs, parties, ref.name, ref.port), `${describeDoc(route)} ${ref.name}`);
    }
  }
  for (const { doc, container } of eachContainer(docs)) {
    const from = partyOf(parties, doc);
    for (const variable of container.env ?? []) {
      for (const match of (variable.value ?? '').matchAll(/\b(https?|nats):\/\/([a-z0-9.-]+)(?::(\d+))?/gi)) {
        need(from, serviceTarget(docs, parties, match[2], match[3] ? Number(match[3]) : defaultPorts[match[1]!.toLowerCase()]), `${describeDoc(doc)} env ${variable.name}`);
        needDns(from);
      }
    }
  }
  // The cluster routes of a NATS server's nats.conf: pod-name.headless-service:port.
  for (const doc of ofKind<IStatefulSet>(docs, 'StatefulSet')) {
    const configMap = (doc.typed.spec?.template.spec?.volumes ?? []).map((volume) => volume.configMap?.name).find(Boolean);
    const conf = Object.values(ofKind<IConfigMap>(docs, 'ConfigMap').find((candidate) => candidate.name === configMap)?.typed.data ?? {}).join('\n');
    const from = partyOf(parties, doc);
    for (const match of conf.matchAll(/nats:\/\/[a-z0-9-]+\.([a-z0-9-]+):(\d+)/g)) {
      const headless = ofKind<IService>(docs, 'Service').find((service) => service.name === match[1]);
      const to = parties.find((party) => party.workload && selects(headless?.typed.spec?.selector ?? { '': '' }, party.labels));
      const port = to?.ports.find((candidate) => candidate.port === Number(match[2]));
      if (to && port) needed.set(flowName(from, to, port), `${describeDoc(doc)} cluster route ${match[0]}`);
      needDns(from);
    }
  }
  return needed;
}

/** Every connection to or from a workload of the set, with any party (the workloads, the entry's proxies, the DNS, strangers), that the policies let through. */
export function allowedFlows(docs: readonly ManifestDoc[]): string[] {
  const parties = [...workloadsOf(docs).map(workloadParty), ...entryParties(docs).values(), clusterDns, ...strangers];
  const allowed: string[] = [];
  for (const from of parties) {
    for (const to of parties) {
      // Between two parties outside the set, no policy of ours has a say.
      if (!from.workload && !to.workload) continue;
      for (const port of to.ports) {
        if (lets(docs, from, 'Egress', to, port, to) && lets(docs, to, 'Ingress', from, port, to)) allowed.push(flowName(from, to, port));
      }
    }
  }
  return allowed;
}

/**
 * NetworkPolicies deny by default and allow exactly what the design needs: every workload is
 * isolated for both directions by a policy of its own, each needed connection (see `neededFlows`)
 * is allowed, and nothing else is, between any of the parties.
 */
export function networkPolicyProblems(docs: readonly ManifestDoc[]): string[] {
  const unisolated = workloadsOf(docs).flatMap((workload) => {
    const party = workloadParty(workload);
    const isolatedFor = new Set(policiesOf(docs).filter((policy) => matchesSelector(policy.typed.spec.podSelector, party.labels)).flatMap((policy) => policyTypes(policy.typed.spec)));
    return (['Ingress', 'Egress'] as const).filter((direction) => !isolatedFor.has(direction)).map((direction) => `${describeDoc(workload)}: no NetworkPolicy selects its pods for ${direction}, so they ${direction === 'Ingress' ? 'accept' : 'open'} any connection`);
  });
  const needed = neededFlows(docs);
  const allowed = new Set(allowedFlows(docs));
  const missing = [...needed].filter(([flow]) => !allowed.has(flow)).map(([flow, why]) => `${flow} is needed (${why}), but the NetworkPolicies refuse it`);
  const extra = [...allowed].filter((flow) => !needed.has(flow)).map((flow) => `${flow} is allowed, but nothing in the design needs it`);
  return [...unisolated, ...missing, ...extra];
}

// --- Copies -------------------------------------------------------------------------------------

/**
 * Where a document of `copies` differs from the document of `originals` with the same kind and name,
 * once `normalize` has removed the intended differences from both: a manifest copied for another
 * profile stays a copy. Documents without a counterpart are not compared.
 */
export function copyDriftProblems(originals: readonly ManifestDoc[], copies: readonly ManifestDoc[], normalize: (body: Body, doc: ManifestDoc) => void): string[] {
  return copies.flatMap((copy) => {
    const original = originals.find((candidate) => candidate.kind === copy.kind && candidate.name === copy.name);
    if (!original) return [];
    const [left, right] = [original, copy].map((doc) => {
      const body = structuredClone(doc.body);
      normalize(body, doc);
      return body;
    });
    return differences(left, right, '').map((at) => `${describeDoc(copy)}: ${at || '(the document)'} differs from ${describeDoc(original)}`);
  });
}

function differences(left: unknown, right: unknown, at: string): string[] {
  if (Array.isArray(left) && Array.isArray(right)) {
    if (left.length !== right.length) return [`${at} (${left.length} items vs ${right.length})`];
    return left.flatMap((item, index) => differences(item, right[index], `${at}[${index}]`));
  }
  if (isObject(left) && isObject(right)) {
    const keys = [...new Set([...Object.keys(left), ...Object.keys(right)])];
    return keys.flatMap((key) => differences(left[key], right[key], at ? `${at}.${key}` : key));
  }
  return Object.is(left, right) ? [] : [at];
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
