import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@blog/testing';
import { describe, expect, it } from 'vitest';
import { imageProblems } from './checks.js';
import { dockerStages, globRepo, jetstreamGlob, k8sGlob, loadRunManifests, loadSkaffold, readRepoFile, runFiles, skaffoldRuns, stageCmd, type ManifestDoc, type MutableBody, type SkaffoldArtifact } from './manifests.js';

/** skaffold.yaml against the manifests, the Dockerfiles and the sources it syncs. */

const runs = skaffoldRuns(loadSkaffold());
const byName = (name: string) => runs.find((run) => run.name === name)!;

/** A copy of a workload whose containers all run `image`. */
function withImage(doc: ManifestDoc, image: string): ManifestDoc {
  const body: MutableBody = structuredClone(doc.body);
  for (const container of body.spec.template.spec.containers) container.image = image;
  return { ...doc, body };
}

function dockerfileOf(artifact: SkaffoldArtifact): string {
  return path.join(artifact.context ?? '.', artifact.docker?.dockerfile ?? 'Dockerfile');
}

describe('skaffold.yaml', () => {
  it('has the default pipeline and the production, gateway-api and jetstream profiles', () => {
    expect(runs.map((run) => run.name)).toEqual(['default', 'profile production', 'profile gateway-api', 'profile jetstream']);
  });

  it.each(runs.map((run) => [run.name, run] as const))('%s: every rawYaml glob matches manifests', (_name, run) => {
    expect(run.rawYaml.length, `${run.name} deploys no manifests`).toBeGreaterThan(0);
    for (const pattern of run.rawYaml) expect(globRepo(pattern), `${run.name}: rawYaml ${pattern} matches no file`).not.toEqual([]);
  });

  it('the gateway-api profile deploys the Gateway API routes instead of the Ingress', () => {
    const files = byName('profile gateway-api').rawYaml.flatMap(globRepo);

    expect(files).toContain('infra/gateway-api/blog-gateway.yaml');
    expect(files).not.toContain('infra/k8s/ingress-srv.yaml');
    expect(byName('default').rawYaml.flatMap(globRepo)).toContain('infra/k8s/ingress-srv.yaml');
  });

  it('the jetstream profile deploys NATS, its own event-driven components, and the shared Secret, client and Ingress', () => {
    expect(runFiles(byName('profile jetstream')).sort()).toEqual(
      [
        'infra/k8s/client-depl.yaml',
        'infra/k8s/event-bus-secret.yaml',
        'infra/k8s/ingress-srv.yaml',
        ...['comments-depl', 'event-bus-depl', 'moderation-depl', 'nats-secret', 'nats', 'posts-depl', 'query-depl'].map((name) => `infra/k8s-jetstream/${name}.yaml`),
      ].sort(),
    );
  });

  it('the jetstream profile runs every component of infra/k8s/: the file itself, or its replacement of the same name in infra/k8s-jetstream/', () => {
    const deployed = runFiles(byName('profile jetstream'));
    const replacements = new Set(globRepo(jetstreamGlob).map((file) => path.basename(file)));
    const missing = globRepo(k8sGlob).filter((file) => !deployed.includes(file) && !replacements.has(path.basename(file)));
    const both = globRepo(k8sGlob).filter((file) => deployed.includes(file) && replacements.has(path.basename(file)));

    expect(missing, 'infra/k8s files the jetstream profile neither deploys nor replaces').toEqual([]);
    expect(both, 'infra/k8s files the jetstream profile deploys next to their replacement').toEqual([]);
  });

  it('the jetstream profile builds and syncs like the default pipeline: it sets only its manifests', () => {
    expect(byName('profile jetstream').artifacts).toEqual(byName('default').artifacts);
  });

  it.each(runs.map((run) => [run.name, run] as const))('%s: defines each object once', (_name, run) => {
    const keys = loadRunManifests(run).map((doc) => `${doc.kind}/${doc.name}`);

    expect(keys.filter((key, index) => keys.indexOf(key) !== index), `${run.name}: objects defined more than once`).toEqual([]);
  });

  it.each(runs.map((run) => [run.name, run] as const))('%s: the workloads use exactly the images it builds, and pinned versions of the others', (_name, run) => {
    expect(imageProblems(run, loadRunManifests(run))).toEqual([]);
  });

  it('when skaffold.yaml builds an image under a name no Deployment uses, then every run reports both sides of the mismatch', () => {
    const misnamed = loadSkaffold(readRepoFile('skaffold.yaml').replaceAll('image: blog/query', 'image: blog/query-api'));

    for (const run of skaffoldRuns(misnamed)) {
      expect(imageProblems(run, loadRunManifests(run)), run.name).toEqual([
        `${run.name}: builds blog/query-api, which no workload of its manifests runs`,
        expect.stringMatching(new RegExp(`/query-depl\\.yaml #\\d+ Deployment/query-depl container query: runs blog/query, which ${run.name} does not build$`)),
      ]);
    }
  });

  it('when a run builds an image twice or a workload pulls an unpinned image, then the check names them', () => {
    const run = byName('default');
    const docs = loadRunManifests(run).map((doc) => (doc.name === 'posts-depl' ? withImage(doc, 'node:latest') : doc));

    expect(imageProblems({ name: run.name, artifacts: [...run.artifacts, run.artifacts[0]!] }, docs)).toEqual([
      `default: builds ${run.artifacts[0]!.image} more than once`,
      'default: builds blog/posts, which no workload of its manifests runs',
      expect.stringMatching(/posts-depl.*: pulls node:latest without a version tag$/),
    ]);
  });

  const artifacts = runs.flatMap((run) => run.artifacts.map((artifact) => [`${run.name} ${artifact.image}`, artifact] as const));

  it.each(artifacts)("%s: context, Dockerfile and target stage exist", (_name, artifact) => {
    const context = artifact.context ?? '.';
    const dockerfile = dockerfileOf(artifact);

    expect(existsSync(path.join(repoRoot, context)) && statSync(path.join(repoRoot, context)).isDirectory(), `context ${context} is a directory`).toBe(true);
    expect(existsSync(path.join(repoRoot, dockerfile)), `${dockerfile} exists`).toBe(true);
    const stages = dockerStages(readRepoFile(dockerfile)).map((stage) => stage.name);
    expect(stages, `${dockerfile} stages`).toContain(artifact.docker?.target);
  });

  const synced = artifacts.filter(([, artifact]) => artifact.sync !== undefined);

  it('the default pipeline syncs sources into every dev image, production syncs nothing', () => {
    expect(byName('default').artifacts.filter((artifact) => !artifact.sync?.manual?.length).map((a) => a.image), 'default artifacts without sync').toEqual([]);
    expect(byName('default').artifacts.map((artifact) => artifact.docker?.target)).toEqual(byName('default').artifacts.map(() => 'dev'));
    expect(byName('profile production').artifacts.filter((artifact) => artifact.sync).map((a) => a.image), 'production artifacts with sync').toEqual([]);
    expect(byName('profile production').artifacts.map((artifact) => artifact.docker?.target)).toEqual(byName('profile production').artifacts.map(() => 'runtime'));
  });

  it.each(synced)('%s: every sync src matches files, lands in /tmp/repo, where the dev stage runs', (_name, artifact) => {
    const dockerfile = dockerfileOf(artifact);
    const stage = dockerStages(readRepoFile(dockerfile)).find((candidate) => candidate.name === artifact.docker?.target);
    const cmd = stage && stageCmd(stage);

    for (const rule of artifact.sync?.manual ?? []) {
      expect(globRepo(path.join(artifact.context ?? '.', rule.src)), `sync src ${rule.src} matches no file`).not.toEqual([]);
      expect(rule.dest, `sync ${rule.src}: dest`).toBe('/tmp/repo');
      expect(rule.strip, `sync ${rule.src}: strip would move files out of the repo layout`).toBeUndefined();
    }
    // The root filesystem is read-only: the dev stage copies /repo to /tmp/repo and works there, so
    // synced files (dest + their path under the context) are the ones it compiles or serves.
    expect(cmd, `${dockerfile} stage ${artifact.docker?.target} has a CMD`).toBeDefined();
    expect(cmd, `${dockerfile} stage ${artifact.docker?.target} CMD copies /repo to /tmp and works in /tmp/repo`).toMatch(/cp -a \/repo \/tmp\/? .*cd \/tmp\/repo\//);
  });
});

describe('dockerStages', () => {
  it('reads stage names from FROM … AS lines, case-insensitively', () => {
    const stages = dockerStages('FROM node:24 AS workspace\nRUN x\nfrom workspace as dev\nCMD ["a"]\nFROM nginx\n');

    expect(stages.map((stage) => stage.name)).toEqual(['workspace', 'dev', undefined]);
    expect(stageCmd(stages[1]!)).toBe('["a"]');
  });
});
