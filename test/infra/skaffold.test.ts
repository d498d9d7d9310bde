import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@blog/testing';
import { describe, expect, it } from 'vitest';
import { eachContainer } from './checks.js';
import { dockerStages, globRepo, loadManifests, loadSkaffold, readRepoFile, skaffoldRuns, stageCmd, type SkaffoldArtifact } from './manifests.js';

/** skaffold.yaml against the manifests, the Dockerfiles and the sources it syncs. */

const runs = skaffoldRuns(loadSkaffold());
const byName = (name: string) => runs.find((run) => run.name === name)!;

/** The images the Deployments of a run's manifests use. */
function deployedImages(rawYaml: readonly string[]): string[] {
  const files = [...new Set(rawYaml.flatMap(globRepo))];
  return [...new Set(eachContainer(loadManifests(files)).map(({ container }) => container.image ?? ''))].sort();
}

function dockerfileOf(artifact: SkaffoldArtifact): string {
  return path.join(artifact.context ?? '.', artifact.docker?.dockerfile ?? 'Dockerfile');
}

describe('skaffold.yaml', () => {
  it('has the default pipeline and the production and gateway-api profiles', () => {
    expect(runs.map((run) => run.name)).toEqual(['default', 'profile production', 'profile gateway-api']);
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

  it.each(runs.map((run) => [run.name, run] as const))('%s: the Deployments use exactly the images it builds', (_name, run) => {
    const built = run.artifacts.map((artifact) => artifact.image).sort();

    expect(new Set(built).size, `${run.name}: an image is built twice`).toBe(built.length);
    expect(built, `${run.name}: built images vs images of the Deployments in ${run.rawYaml.join(', ')}`).toEqual(deployedImages(run.rawYaml));
  });

  it('when a Deployment uses an image no artifact builds, then the comparison fails', () => {
    const built = byName('default')
      .artifacts.filter((artifact) => artifact.image !== 'blog/query')
      .map((artifact) => artifact.image);

    expect(built).not.toEqual(deployedImages(byName('default').rawYaml));
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
