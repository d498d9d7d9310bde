import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';

/**
 * An HTTPRoute evaluated the way a Gateway API implementation routes a request path, so tests can
 * hold it to the Ingress's route table.
 *
 * Precedence between the matches of a route (Gateway API HTTPRouteRule rules, with Envoy Gateway's
 * choices where the spec leaves them to the implementation):
 *   1. an Exact path match;
 *   2. RegularExpression matches: the whole path must match (RE2 semantics; the patterns we use are
 *      in the common subset of RE2 and JavaScript). The spec leaves regex precedence to the
 *      implementation; Envoy Gateway orders them like prefixes, longest pattern first
 *      (envoyproxy/gateway internal/gatewayapi/sort.go: Exact > RegularExpression > PathPrefix, then
 *      by the length of the path value);
 *   3. the longest matching PathPrefix. A prefix matches whole path segments: `/posts` matches
 *      `/posts` and `/posts/…`, not `/postsX`; `/` matches everything.
 * Ties keep rule order. Paths are case-sensitive unless a regex starts with RE2's `(?i)`.
 * Header and query-parameter matches are not evaluated: the evaluator refuses them rather than guess.
 */

export interface HttpRouteTarget {
  service: string;
  port: number | undefined;
  /** The match that won, for failure messages: `PathPrefix /posts`. */
  matchedBy: string;
}

type PathType = 'Exact' | 'PathPrefix' | 'RegularExpression';

interface Candidate {
  type: PathType;
  value: string;
  method: string | undefined;
  target: Omit<HttpRouteTarget, 'matchedBy'>;
  order: number;
}

const typeRank: Record<PathType, number> = { Exact: 0, RegularExpression: 1, PathPrefix: 2 };

export function pathPrefixMatches(prefix: string, path: string): boolean {
  const trimmed = prefix.replace(/\/+$/, '');
  if (trimmed === '') return true;
  return path === trimmed || path.startsWith(`${trimmed}/`);
}

function pathMatches(candidate: Candidate, path: string): boolean {
  switch (candidate.type) {
    case 'Exact':
      return path === candidate.value;
    case 'PathPrefix':
      return pathPrefixMatches(candidate.value, path);
    case 'RegularExpression': {
      // RE2's leading (?i) (case-insensitive) is a flag in JavaScript.
      const insensitive = candidate.value.startsWith('(?i)');
      const source = insensitive ? candidate.value.slice(4) : candidate.value;
      return new RegExp(`^(?:${source})$`, insensitive ? 'i' : '').test(path);
    }
  }
}

export function createHttpRouteMatcher(route: IHTTPRoute): (request: { method?: string; path: string }) => HttpRouteTarget | undefined {
  const candidates = (route.spec.rules ?? []).flatMap((rule, r) => {
    const backends = rule.backendRefs ?? [];
    if (backends.length !== 1) throw new Error(`HTTPRoute ${route.metadata?.name} rules[${r}]: expected exactly one backendRef, found ${backends.length}`);
    const target = { service: backends[0]!.name, port: backends[0]!.port };
    // A rule without matches matches every path, like a PathPrefix `/`.
    return (rule.matches ?? [{}]).map((match, m): Candidate => {
      if ((match.headers?.length ?? 0) > 0 || (match.queryParams?.length ?? 0) > 0) {
        throw new Error(`HTTPRoute ${route.metadata?.name} rules[${r}].matches[${m}]: header and query matches are not evaluated here`);
      }
      return { type: match.path?.type ?? 'PathPrefix', value: match.path?.value ?? '/', method: match.method, target, order: r };
    });
  });
  const ordered = [...candidates].sort((a, b) => typeRank[a.type] - typeRank[b.type] || b.value.length - a.value.length || a.order - b.order);
  return ({ method, path }) => {
    const winner = ordered.find((candidate) => (candidate.method === undefined || candidate.method === method) && pathMatches(candidate, path));
    return winner && { ...winner.target, matchedBy: `${winner.type} ${winner.value}` };
  };
}
