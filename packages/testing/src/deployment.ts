import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot, type ServiceName } from './processes.js';

/**
 * NODE_OPTIONS of `service`'s container in its Deployment, infra/k8s/<service>-depl.yaml: memory
 * figures and tests run a process with the heap cap it gets in the cluster, whatever that is set to.
 */
export function deploymentNodeOptions(service: ServiceName): string {
  const file = path.join(repoRoot, 'infra', 'k8s', `${service}-depl.yaml`);
  interface Manifest {
    kind?: string;
    spec?: { template?: { spec?: { containers?: Array<{ name?: string; env?: Array<{ name?: string; value?: unknown }> }> } } };
  }
  for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
    const manifest = document.toJS() as Manifest | null;
    if (manifest?.kind !== 'Deployment') continue;
    const containers = manifest.spec?.template?.spec?.containers ?? [];
    const container = containers.find((c) => c.name === service) ?? containers[0];
    const value = container?.env?.find((variable) => variable.name === 'NODE_OPTIONS')?.value;
    if (typeof value === 'string' && value.trim() !== '') return value;
  }
  throw new Error(`${path.relative(repoRoot, file)}: the Deployment sets no NODE_OPTIONS for its ${service} container`);
}
