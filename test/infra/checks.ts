import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IService } from 'kubernetes-models/v1/Service';
import { describeDoc, ofKind, type ManifestDoc } from './manifests.js';

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
export function serviceSelectorProblems(docs: readonly ManifestDoc[]): string[] {
  const deployments = ofKind<IDeployment>(docs, 'Deployment');
  return ofKind<IService>(docs, 'Service').flatMap((doc) => {
    const selector = doc.typed.spec?.selector ?? {};
    if (Object.keys(selector).length === 0) return [`${describeDoc(doc)}: has no selector`];
    const selected = deployments.filter((deployment) => {
      const labels = deployment.typed.spec?.template.metadata?.labels ?? {};
      return Object.entries(selector).every(([key, value]) => labels[key] === value);
    });
    if (selected.length !== 1) {
      return [`${describeDoc(doc)}: selector ${JSON.stringify(selector)} matches the pod template of ${selected.length} Deployments (${selected.map((d) => d.name).join(', ')}), expected 1`];
    }
    const [deployment] = selected;
    const containerPorts = (deployment!.typed.spec?.template.spec?.containers ?? []).flatMap((container) => container.ports ?? []);
    return (doc.typed.spec?.ports ?? []).flatMap((port) => {
      const target = port.targetPort ?? port.port;
      const declared = containerPorts.some((containerPort) => (typeof target === 'number' ? containerPort.containerPort === target : containerPort.name === target));
      return declared ? [] : [`${describeDoc(doc)}: targetPort ${target} of port ${port.port} is not a containerPort of Deployment ${deployment!.name}`];
    });
  });
}

/** Every `http://name:port` in a container's env names a Service of the set and one of its ports. */
export function envUrlProblems(docs: readonly ManifestDoc[]): string[] {
  const services = servicesOf(docs);
  return eachContainer(docs).flatMap(({ doc, container }) =>
    (container.env ?? []).flatMap((variable) =>
      [...(variable.value ?? '').matchAll(/https?:\/\/([a-z0-9.-]+):(\d+)/gi)].flatMap((match) =>
        checkServicePort(services, `${describeDoc(doc)} container ${container.name} env ${variable.name} (${match[0]})`, match[1], Number(match[2])),
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
    const usesBus = env.some((variable) => variable.name === 'EVENT_BUS_URL' || variable.name === 'SUBSCRIBERS');
    if (usesBus && !env.some((variable) => variable.name === 'EVENT_BUS_SECRET' && variable.valueFrom?.secretKeyRef)) found.push(`${where}: talks to the bus without EVENT_BUS_SECRET from a Secret`);
    return found;
  });
  if (sources.size > 1) problems.push(`EVENT_BUS_SECRET comes from different Secrets: ${[...sources].join(', ')}`);
  return problems;
}

/** Every ServiceAccount a pod runs as is in the set. */
export function serviceAccountProblems(docs: readonly ManifestDoc[]): string[] {
  const accounts = new Set(ofKind(docs, 'ServiceAccount').map((doc) => doc.name));
  return ofKind<IDeployment>(docs, 'Deployment').flatMap((doc) => {
    const account = doc.typed.spec?.template.spec?.serviceAccountName;
    return account === undefined || accounts.has(account) ? [] : [`${describeDoc(doc)}: serviceAccountName ${account} is not a ServiceAccount of the manifests`];
  });
}

export function eachContainer(docs: readonly ManifestDoc[]): Array<{ doc: ManifestDoc & { typed: IDeployment }; container: IContainer }> {
  return ofKind<IDeployment>(docs, 'Deployment').flatMap((doc) => {
    const pod = doc.typed.spec?.template.spec;
    return [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])].map((container) => ({ doc, container }));
  });
}

/** The hardening and health checks every container of every Deployment must have (docs/STYLE "Manifests and images"). */
export function podHardeningProblems(docs: readonly ManifestDoc[]): string[] {
  const podProblems = ofKind<IDeployment>(docs, 'Deployment').flatMap((doc) => {
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
    if (container.livenessProbe?.httpGet?.path !== '/healthz') problems.push('liveness probe is not GET /healthz');
    if (container.readinessProbe?.httpGet?.path !== '/readyz') problems.push('readiness probe is not GET /readyz');
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

/** The volume a Deployment's container mounts at a path, if any. */
export function volumeAt(doc: ManifestDoc & { typed: IDeployment }, mountPath: string) {
  const pod = doc.typed.spec?.template.spec;
  const mount = (pod?.containers ?? []).flatMap((container) => container.volumeMounts ?? []).find((m) => m.mountPath === mountPath);
  return (pod?.volumes ?? []).find((volume) => volume.name === mount?.name);
}
