import { globSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@blog/testing';
import { Gateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parseAllDocuments } from 'yaml';

/** Reading the manifests, the Skaffold config and the Dockerfiles, for the infra tests. */

export type Body = Record<string, unknown>;

/**
 * A document as a test mutates it, reaching deep into it to break one field. Typing every step of
 * such a path would add `!` noise and no safety: the mutated copy is validated or checked anyway.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type MutableBody = any;

export interface ManifestDoc {
  /** Repository-relative, for failure messages. */
  file: string;
  /** 1-based position of the document in its file. */
  position: number;
  apiVersion: string;
  kind: string;
  name: string;
  body: Body;
}

/** `infra/k8s/posts-depl.yaml #2 Deployment/posts-depl`: where a problem is. */
export const describeDoc = (doc: ManifestDoc): string => `${doc.file} #${doc.position} ${doc.kind}/${doc.name}`;

export const k8sGlob = 'infra/k8s/*.yaml';
export const gatewayApiGlob = 'infra/gateway-api/*.yaml';
/** The `jetstream` profile's own manifests: NATS, and the components it runs differently. */
export const jetstreamGlob = 'infra/k8s-jetstream/*.yaml';

/** Repository-relative files matching a glob, sorted. Skaffold writes `./infra/...`: the `./` is dropped. */
export function globRepo(pattern: string): string[] {
  return globSync(pattern.replace(/^\.\//, ''), { cwd: repoRoot }).sort();
}

export function readRepoFile(file: string): string {
  return readFileSync(path.join(repoRoot, file), 'utf8');
}

export function parseManifest(file: string, text: string): ManifestDoc[] {
  return parseAllDocuments(text)
    .map((document, index) => {
      if (document.errors.length > 0) throw new Error(`${file} #${index + 1}: ${document.errors.map((e) => e.message).join('; ')}`);
      return { body: document.toJS() as Body | null, position: index + 1 };
    })
    .filter((entry): entry is { body: Body; position: number } => entry.body !== null)
    .map(({ body, position }) => {
      const metadata = body.metadata as { name?: unknown } | undefined;
      return { file, position, apiVersion: String(body.apiVersion), kind: String(body.kind), name: String(metadata?.name), body };
    });
}

export function loadManifests(files: readonly string[]): ManifestDoc[] {
  return files.flatMap((file) => parseManifest(file, readRepoFile(file)));
}

/**
 * Every manifest of the repository: the Kubernetes ones, the Gateway API ones and the `jetstream`
 * profile's. Several define the same object (each profile has its own event-bus-depl), so this set
 * is for checking documents one by one; cross-references hold within one Skaffold run's set.
 */
export function loadAllManifests(): ManifestDoc[] {
  return loadManifests([...globRepo(k8sGlob), ...globRepo(gatewayApiGlob), ...globRepo(jetstreamGlob)]);
}

/** The files one Skaffold run applies: its rawYaml globs, each file once. */
export function runFiles(run: { rawYaml: readonly string[] }): string[] {
  return [...new Set(run.rawYaml.flatMap(globRepo))];
}

/** The documents one Skaffold run applies. */
export function loadRunManifests(run: { rawYaml: readonly string[] }): ManifestDoc[] {
  return loadManifests(runFiles(run));
}

/** The typed view of the documents of one kind (after schema validation, the shape is known). */
export function ofKind<T>(docs: readonly ManifestDoc[], kind: string): Array<ManifestDoc & { typed: T }> {
  return docs.filter((doc) => doc.kind === kind).map((doc) => ({ ...doc, typed: doc.body as T }));
}

// --- Schema validation --------------------------------------------------------------------------

type Validate = (body: Body) => void;

/** The kubernetes-models class for each apiVersion/kind we use: `validate()` checks the OpenAPI schema. */
const validators: Record<string, Validate> = {
  'v1/ServiceAccount': (body) => new ServiceAccount(body).validate(),
  'v1/Service': (body) => new Service(body).validate(),
  'v1/Secret': (body) => new Secret(body).validate(),
  'v1/PersistentVolumeClaim': (body) => new PersistentVolumeClaim(body).validate(),
  'v1/ConfigMap': (body) => new ConfigMap(body).validate(),
  'apps/v1/Deployment': (body) => new Deployment(body).validate(),
  'apps/v1/StatefulSet': (body) => new StatefulSet(body).validate(),
  'policy/v1/PodDisruptionBudget': (body) => new PodDisruptionBudget(body).validate(),
  'autoscaling/v2/HorizontalPodAutoscaler': (body) => new HorizontalPodAutoscaler(body as never).validate(),
  'networking.k8s.io/v1/Ingress': (body) => new Ingress(body).validate(),
  'networking.k8s.io/v1/NetworkPolicy': (body) => new NetworkPolicy(body).validate(),
  'gateway.networking.k8s.io/v1/Gateway': (body) => new Gateway(body as never).validate(),
  'gateway.networking.k8s.io/v1/HTTPRoute': (body) => new HTTPRoute(body as never).validate(),
};

export function validatorFor(doc: Pick<ManifestDoc, 'apiVersion' | 'kind'>): Validate | undefined {
  return validators[`${doc.apiVersion}/${doc.kind}`];
}

/** The schema errors of a document, or undefined when it is valid. Throws for a kind we have no model for. */
export function schemaErrors(doc: ManifestDoc): string | undefined {
  const validate = validatorFor(doc);
  if (!validate) throw new Error(`${describeDoc(doc)}: no kubernetes-models class for ${doc.apiVersion} ${doc.kind}`);
  try {
    validate(doc.body);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * The fields of a document its schema does not know, as paths like `spec.template.spec.containers[0].readinessprobe`.
 *
 * kubernetes-models ships validators compiled from the OpenAPI schemas, which (like the API server's
 * schemas) do not say `additionalProperties: false`: a misspelled field passes `validate()`, and
 * kubectl would drop it or fail only at apply time. The schemas themselves are not shipped, so we ask
 * the validator: each key in turn gets a value no schema accepts (a Symbol). A known field, or any
 * key of a map such as `labels`, then fails validation; a key the schema does not know passes, so
 * it is reported. (A field typed "anything" would be reported too; none of our kinds has one.)
 */
export function unknownFields(doc: ManifestDoc): string[] {
  const validate = validatorFor(doc);
  if (!validate) throw new Error(`${describeDoc(doc)}: no kubernetes-models class for ${doc.apiVersion} ${doc.kind}`);
  const accepts = (body: Body) => {
    try {
      validate(body);
      return true;
    } catch {
      return false;
    }
  };
  if (!accepts(doc.body)) throw new Error(`${describeDoc(doc)} fails its schema: probing for unknown fields would mean nothing`);
  const unknown: string[] = [];
  const visit = (node: unknown, at: ReadonlyArray<string | number>): void => {
    if (Array.isArray(node)) {
      node.forEach((item, index) => visit(item, [...at, index]));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      const probe = structuredClone(doc.body);
      setAt(probe, [...at, key], Symbol('not a valid value'));
      if (accepts(probe)) unknown.push(formatPath([...at, key]));
      else visit(value, [...at, key]);
    }
  };
  visit(doc.body, []);
  return unknown;
}

function setAt(root: Body, at: ReadonlyArray<string | number>, value: unknown): void {
  let node: unknown = root;
  for (const step of at.slice(0, -1)) node = (node as Record<string | number, unknown>)[step];
  (node as Record<string | number, unknown>)[at.at(-1)!] = value;
}

function formatPath(at: ReadonlyArray<string | number>): string {
  return at.map((step, index) => (typeof step === 'number' ? `[${step}]` : index === 0 ? step : `.${step}`)).join('');
}

// --- Skaffold -----------------------------------------------------------------------------------

export interface SkaffoldArtifact {
  image: string;
  context?: string;
  docker?: { dockerfile?: string; target?: string };
  sync?: { manual?: Array<{ src: string; dest: string; strip?: string }> };
}

interface SkaffoldPipeline {
  build?: { artifacts?: SkaffoldArtifact[] };
  manifests?: { rawYaml?: string[] };
}

export interface SkaffoldConfig extends SkaffoldPipeline {
  profiles?: Array<SkaffoldPipeline & { name: string }>;
}

export function loadSkaffold(text: string = readRepoFile('skaffold.yaml')): SkaffoldConfig {
  const [document, ...rest] = parseAllDocuments(text);
  if (!document || rest.length > 0) throw new Error('skaffold.yaml: expected exactly one document');
  return document.toJS() as SkaffoldConfig;
}

/** What one way of running Skaffold builds and deploys: the default pipeline, or a profile over it. */
export interface SkaffoldRun {
  name: string;
  artifacts: SkaffoldArtifact[];
  rawYaml: string[];
}

export function skaffoldRuns(config: SkaffoldConfig): SkaffoldRun[] {
  const base = { artifacts: config.build?.artifacts ?? [], rawYaml: config.manifests?.rawYaml ?? [] };
  return [
    { name: 'default', ...base },
    ...(config.profiles ?? []).map((profile) => ({
      name: `profile ${profile.name}`,
      // A profile replaces what it sets and keeps the rest.
      artifacts: profile.build?.artifacts ?? base.artifacts,
      rawYaml: profile.manifests?.rawYaml ?? base.rawYaml,
    })),
  ];
}

// --- Dockerfiles --------------------------------------------------------------------------------

export interface DockerStage {
  name: string | undefined;
  /** The stage's instructions, from its FROM line up to the next FROM. */
  text: string;
}

export function dockerStages(dockerfile: string): DockerStage[] {
  const fromLine = /^FROM\s+\S+(?:\s+AS\s+(\S+))?\s*$/gim;
  const starts = [...dockerfile.matchAll(fromLine)];
  return starts.map((match, index) => ({
    name: match[1],
    text: dockerfile.slice(match.index, starts[index + 1]?.index ?? dockerfile.length),
  }));
}

/** The stage's own CMD (the last one wins), if it sets one. */
export function stageCmd(stage: DockerStage): string | undefined {
  return [...stage.text.matchAll(/^CMD\s+(.+)$/gm)].at(-1)?.[1];
}
