import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { describe, expect, it } from 'vitest';
import { backendProblems, envUrlProblems, gatewayParentProblems, podHardeningProblems, secretRefProblems, serviceAccountProblems, serviceSelectorProblems, volumeAt } from './checks.js';
import { describeDoc, loadAllManifests, ofKind, type ManifestDoc, type MutableBody } from './manifests.js';

/** The manifests refer to each other by name and port: every reference must land. */

const docs = loadAllManifests();

/** The manifests with one document changed, to show a check catches the change. */
function withChange(kind: string, name: string, change: (body: MutableBody) => void): ManifestDoc[] {
  const target = docs.find((doc) => doc.kind === kind && doc.name === name);
  if (!target) throw new Error(`no ${kind}/${name} in the manifests`);
  return docs.map((doc) => {
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

    expect(serviceSelectorProblems(broken)).toEqual([expect.stringMatching(/Service\/posts-clusterip-srv: selector .* matches the pod template of 0 Deployments/)]);
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
