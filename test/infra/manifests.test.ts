import { describe, expect, it } from 'vitest';
import { describeDoc, gatewayApiGlob, globRepo, jetstreamGlob, k8sGlob, loadAllManifests, parseManifest, schemaErrors, unknownFields, type ManifestDoc, type MutableBody } from './manifests.js';

/** Every manifest document against the Kubernetes (and Gateway API) OpenAPI schemas, offline. */

const docs = loadAllManifests();

/** A copy of a document with one change, to show a check catches it. */
function mutated(doc: ManifestDoc, change: (body: MutableBody) => void): ManifestDoc {
  const body: MutableBody = structuredClone(doc.body);
  change(body);
  return { ...doc, body };
}

const deployment = docs.find((doc) => doc.kind === 'Deployment' && doc.name === 'posts-depl')!;
const httpRoute = docs.find((doc) => doc.kind === 'HTTPRoute')!;

describe('the manifests', () => {
  it('are the files we expect, each with documents', () => {
    expect(globRepo(k8sGlob), `${k8sGlob} should hold one file per component, the shared Secret and the Ingress`).toEqual(
      ['client', 'comments', 'event-bus', 'moderation', 'posts', 'query']
        .map((name) => `infra/k8s/${name}-depl.yaml`)
        .concat('infra/k8s/event-bus-secret.yaml', 'infra/k8s/ingress-srv.yaml')
        .sort(),
    );
    expect(globRepo(gatewayApiGlob)).toEqual(['infra/gateway-api/blog-gateway.yaml']);
    expect(globRepo(jetstreamGlob), `${jetstreamGlob} should hold NATS and the components the jetstream profile runs differently`).toEqual(
      ['comments-depl', 'event-bus-depl', 'moderation-depl', 'nats-secret', 'nats', 'posts-depl', 'query-depl'].map((name) => `infra/k8s-jetstream/${name}.yaml`),
    );
    expect(docs.map((doc) => `${doc.kind}/${doc.name}`)).toEqual(
      expect.arrayContaining([
        'Deployment/posts-depl',
        'Ingress/ingress-srv',
        'Gateway/blog-gateway',
        'HTTPRoute/blog-routes',
        'StatefulSet/nats',
        'ConfigMap/nats-config',
        'PodDisruptionBudget/nats-pdb',
        'HorizontalPodAutoscaler/query-hpa',
        'NetworkPolicy/nats',
        'NetworkPolicy/ingress-srv',
        'NetworkPolicy/blog-gateway',
        'Secret/nats-secret',
      ]),
    );
  });

  it.each(docs.map((doc) => [describeDoc(doc), doc] as const))('%s validates against its OpenAPI schema', (_where, doc) => {
    expect(schemaErrors(doc), `${describeDoc(doc)} fails its schema`).toBeUndefined();
  });

  it.each(docs.map((doc) => [describeDoc(doc), doc] as const))('%s has no field its schema does not know', (_where, doc) => {
    expect(unknownFields(doc), `${describeDoc(doc)}: unknown (misspelled?) fields`).toEqual([]);
  });

  it('each names itself and labels itself with its app', () => {
    const problems = docs.filter((doc) => typeof (doc.body.metadata as { labels?: { app?: unknown } }).labels?.app !== 'string').map(describeDoc);

    expect(problems, 'documents without an app label').toEqual([]);
  });
});

describe('the schema checks', () => {
  it('when a field has the wrong type, then validation rejects it', () => {
    const wrong = mutated(deployment, (body) => {
      body.spec.replicas = 'one';
    });

    expect(schemaErrors(wrong)).toMatch(/spec\/replicas must be integer/);
  });

  it('when a required field is missing, then validation rejects it', () => {
    const wrong = mutated(httpRoute, (body) => {
      delete body.spec.rules[0].backendRefs[0].name;
    });

    expect(schemaErrors(wrong)).toMatch(/name/);
  });

  // kubernetes-models' validate() accepts unknown properties (the OpenAPI schemas do not forbid
  // them), which is why unknownFields() exists: these show it catches what validate() lets through.
  it('when a field is misspelled, then validate() alone passes but the unknown-field check names it', () => {
    const typo = mutated(deployment, (body) => {
      body.spec.replica = 1;
      body.spec.template.spec.containers[0].readinessprobe = body.spec.template.spec.containers[0].readinessProbe;
      delete body.spec.template.spec.containers[0].readinessProbe;
    });

    expect(schemaErrors(typo), 'kubernetes-models now rejects unknown fields by itself').toBeUndefined();
    expect(unknownFields(typo).sort()).toEqual(['spec.replica', 'spec.template.spec.containers[0].readinessprobe']);
  });

  it('when a Gateway API route has a misspelled field, then the unknown-field check names it', () => {
    const typo = mutated(httpRoute, (body) => {
      body.spec.rules[0].matchs = body.spec.rules[0].matches;
    });

    expect(unknownFields(typo)).toEqual(['spec.rules[0].matchs']);
  });

  it('when a map such as labels or resources gets a new key, then it is not reported as unknown', () => {
    const extended = mutated(deployment, (body) => {
      body.spec.template.metadata.labels.tier = 'backend';
      body.spec.template.spec.containers[0].resources.limits['ephemeral-storage'] = '1Gi';
    });

    expect(unknownFields(extended)).toEqual([]);
  });

  it('when a StatefulSet, a budget or an autoscaler has a misspelled field, then the unknown-field check names it', () => {
    const statefulSet = docs.find((doc) => doc.kind === 'StatefulSet')!;
    const budget = docs.find((doc) => doc.kind === 'PodDisruptionBudget')!;
    const autoscaler = docs.find((doc) => doc.kind === 'HorizontalPodAutoscaler')!;

    const misspelled = {
      statefulSet: mutated(statefulSet, (body) => {
        body.spec.volumeClaimTemplate = body.spec.volumeClaimTemplates;
        delete body.spec.volumeClaimTemplates;
      }),
      budget: mutated(budget, (body) => {
        body.spec.maxUnavailible = 1;
      }),
      autoscaler: mutated(autoscaler, (body) => {
        body.spec.metrics[0].resource.target.averageUtilisation = 70;
      }),
    };

    expect(unknownFields(misspelled.statefulSet)).toEqual(['spec.volumeClaimTemplate']);
    expect(unknownFields(misspelled.budget)).toEqual(['spec.maxUnavailible']);
    expect(unknownFields(misspelled.autoscaler)).toEqual(['spec.metrics[0].resource.target.averageUtilisation']);
  });

  it('when a budget sets a field to the wrong type, then validation rejects it', () => {
    const budget = docs.find((doc) => doc.kind === 'PodDisruptionBudget')!;

    const wrong = mutated(budget, (body) => {
      body.spec.selector = 'app=nats';
    });

    expect(schemaErrors(wrong)).toMatch(/selector/);
  });

  it('when a document has a kind without a model, then the check says so instead of passing', () => {
    const [cronJob] = parseManifest('inline.yaml', 'apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: x\n');

    expect(() => schemaErrors(cronJob!)).toThrow(/inline.yaml #1 CronJob\/x: no kubernetes-models class/);
  });
});
