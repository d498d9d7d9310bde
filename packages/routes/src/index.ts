import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export { pathRefusal } from './request-path.js';

/**
 * The blog's public routes are defined once, in the Ingress (`infra/k8s/ingress-srv.yaml`). Every
 * other entry point (`pnpm start`'s gateway, the compose entry, the Gateway API routes) is derived
 * from or tested against this reading of it.
 */

export interface Route {
  /** The Ingress path, a regular expression under `use-regex`. */
  path: string;
  /** The Kubernetes Service the path goes to, and its port. */
  service: string;
  port: number;
  /** How ingress-nginx matches it: case-insensitive, anchored at the start only. */
  pattern: RegExp;
}

export interface RouteTable {
  host: string | undefined;
  /** In the order ingress-nginx tries them. */
  routes: Route[];
  /** The route ingress-nginx picks for a request path, if any. */
  match(path: string): Route | undefined;
}

export const defaultIngressFile = fileURLToPath(new URL('../../../infra/k8s/ingress-srv.yaml', import.meta.url));

interface IngressPath {
  path?: string;
  pathType?: string;
  backend?: { service?: { name?: string; port?: { number?: number } } };
}

interface IngressDocument {
  kind?: string;
  metadata?: { annotations?: Record<string, string> };
  spec?: { rules?: Array<{ host?: string; http?: { paths?: IngressPath[] } }> };
}

/** Reads an Ingress manifest (the first document of kind Ingress) into its route table. */
export function parseIngress(yamlText: string): RouteTable {
  const ingress = yamlText
    .split(/^---$/m)
    .map((doc) => parse(doc) as IngressDocument | null)
    .find((doc) => doc?.kind === 'Ingress');
  if (!ingress) throw new Error('no Ingress in the manifest');
  const rules = ingress.spec?.rules ?? [];
  if (rules.length !== 1) throw new Error(`expected one Ingress rule, found ${rules.length}`);
  const [rule] = rules;
  const useRegex = ingress.metadata?.annotations?.['nginx.ingress.kubernetes.io/use-regex'] === 'true';
  const routes = (rule!.http?.paths ?? []).map((entry, index): Route => {
    const service = entry.backend?.service?.name;
    const port = entry.backend?.service?.port?.number;
    if (!entry.path || !service || port === undefined) throw new Error(`Ingress path #${index + 1} needs a path, a service name and a port number`);
    // Without use-regex, ImplementationSpecific/Prefix paths are plain prefixes.
    const source = useRegex ? entry.path : entry.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return { path: entry.path, service, port, pattern: new RegExp(`^${source}`, 'i') };
  });
  const ordered = orderLikeIngressNginx(routes);
  return { host: rule!.host, routes: ordered, match: (path) => ordered.find((route) => route.pattern.test(path)) };
}

/**
 * ingress-nginx writes regex locations longest path first, and nginx takes the first regex that
 * matches. Paths of equal length keep the controller's earlier ordering, by path descending.
 */
export function orderLikeIngressNginx<T extends { path: string }>(routes: readonly T[]): T[] {
  return [...routes].sort((a, b) => (a.path < b.path ? 1 : a.path > b.path ? -1 : 0)).sort((a, b) => b.path.length - a.path.length);
}

export function loadRouteTable(file: string = defaultIngressFile): RouteTable {
  return parseIngress(readFileSync(file, 'utf8'));
}
