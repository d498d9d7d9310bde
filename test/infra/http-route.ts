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

/**
 * What Envoy Gateway (the `eg` class of infra/gateway-api) does with a request path before its
 * routes see it, with its defaults (no ClientTrafficPolicy changes them): the HTTP connection
 * manager it configures has normalize_path and merge_slashes on, and path_with_escaped_slashes_action
 * UNESCAPE_AND_REDIRECT (envoyproxy/gateway internal/xds/translator/listener.go; api/v1alpha1
 * PathSettings). So:
 *   - a path with %2F or %5C (either case) is not routed: Envoy answers a redirect to the path
 *     with them unescaped and normalized, and the client's next request is for that path;
 *   - otherwise the path is normalized per RFC 3986 by Chromium's URL canonicalizer (escapes of
 *     unreserved characters decoded, so %2e is a dot; `.` and `..` resolved, `..` stopping at the
 *     root; a backslash read as a slash: not checked against Envoy, and the outcome is the same
 *     if it is kept, as the backend gets the path the rule matched), then `//` merged;
 *   - the route matches that path, and the upstream receives that same path.
 * Other implementations may differ: the evaluation holds for Envoy Gateway, as the manifest says.
 */
export type EnvoyOutcome =
  | { redirect: string }
  | { redirect?: never; service: string; port: number | undefined; routedOn: string; upstreamPath: string };

const unreserved = /[A-Za-z0-9\-._~]/;

/** Envoy's normal form of a path without escaped slashes (no query). */
export function normalizeLikeEnvoy(path: string): string {
  const decoded = path.replace(/%([0-9a-f]{2})/gi, (escape, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return unreserved.test(char) ? char : escape;
  });
  const segments: string[] = [];
  const parts = decoded.replaceAll('\\', '/').split('/').slice(1);
  for (const [index, segment] of parts.entries()) {
    const last = index === parts.length - 1;
    if (segment === '..') {
      segments.pop();
      if (last) segments.push('');
    } else if (segment === '.') {
      if (last) segments.push('');
    } else {
      segments.push(segment);
    }
  }
  return `/${segments.join('/')}`.replace(/\/{2,}/g, '/');
}

export function forwardLikeEnvoyGateway(match: ReturnType<typeof createHttpRouteMatcher>, request: { method: string; target: string }): EnvoyOutcome {
  const queryAt = request.target.search(/[?#]/);
  const path = queryAt === -1 ? request.target : request.target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : request.target.slice(queryAt);
  if (/%(2f|5c)/i.test(path)) return { redirect: `${normalizeLikeEnvoy(path.replace(/%2f/gi, '/').replace(/%5c/gi, '\\'))}${query}` };
  const normalized = normalizeLikeEnvoy(path);
  const target = match({ method: request.method, path: normalized });
  if (!target) throw new Error(`no HTTPRoute rule matches ${normalized}: the Gateway would answer 404`);
  return { service: target.service, port: target.port, routedOn: normalized, upstreamPath: `${normalized}${query}` };
}
