import type { RouteTable } from '@blog/routes';

/**
 * What ingress-nginx does with a request path, so tests can follow one from the client to the
 * upstream without a cluster. The assumptions, each checked against nginx 1.22 (Debian's
 * nginx-light) running the location blocks ingress-nginx writes for our Ingress:
 *
 * - ingress-nginx writes one `location ~* "^<path>"` per Ingress path, longest path first (the
 *   order @blog/routes models), each with `proxy_pass http://upstream_balancer;`, and with
 *   `rewrite "(?i)<path>" <rewrite-target> break;` before it when the Ingress sets rewrite-target
 *   (kubernetes/ingress-nginx internal/ingress/controller/template: buildLocation, buildProxyPass).
 * - Locations match the normalized URI: every %XX decoded once (%2F included, so an encoded slash
 *   separates segments; %252e stays %2e), `//` merged (merge_slashes, on by default), `.` and `..`
 *   resolved. A bad escape, %00, or a `..` above the root is answered 400 before any location.
 *   A backslash and `;` are ordinary characters (nginx on Linux).
 * - proxy_pass without a URI sends the upstream the path as the client wrote it, not the one the
 *   location matched. After `rewrite … $uri break` the URI counts as changed: the upstream gets
 *   the normalized URI, escaped again (space, `"`, `#`, `%`, `<`, `>`, `?`, `\`, `^`, backquote,
 *   `{`, `|`, `}`, controls and non-ASCII), then the original query string.
 * - ingress-nginx settings that would change this (a proxy_pass with a URI from other
 *   annotations, server snippets) are not used by our Ingress.
 */

export type Forwarded =
  | { refused: true; status: number }
  | { refused: false; service: string; port: number; routedOn: string; upstreamPath: string };

const hexEscape = /%([0-9a-f]{2})/gi;

/** nginx's reading of a request path (no query): undefined where nginx answers 400 itself. */
export function normalizeLikeNginx(path: string): string | undefined {
  if (/%(?![0-9a-f]{2})/i.test(path)) return undefined;
  // One character per byte (latin1), as nginx works on bytes.
  const decoded = path.replace(hexEscape, (_escape, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  if (decoded.includes('\0')) return undefined;
  const segments: string[] = [];
  const parts = decoded.split('/').slice(1);
  for (const [index, segment] of parts.entries()) {
    const last = index === parts.length - 1;
    if (segment === '..') {
      if (segments.length === 0) return undefined;
      segments.pop();
      if (last) segments.push('');
    } else if (segment === '.' || (segment === '' && !last)) {
      if (last) segments.push('');
    } else {
      segments.push(segment);
    }
  }
  return `/${segments.join('/')}`;
}

const keptByNginx = /[A-Za-z0-9\-._~!$&'()*+,;=:@/[\]]/;

/** nginx's escaping of a changed URI (one character per byte) before proxy_pass sends it (NGX_ESCAPE_URI). */
export function escapeLikeNginx(uri: string): string {
  return [...uri].map((char) => (keptByNginx.test(char) ? char : `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

/** Where ingress-nginx sends a request target, and the path the upstream receives. */
export function forwardLikeIngressNginx(table: RouteTable, annotations: Readonly<Record<string, string>>, target: string): Forwarded {
  const queryAt = target.search(/[?#]/);
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : target.slice(queryAt);
  const normalized = normalizeLikeNginx(path);
  if (normalized === undefined) return { refused: true, status: 400 };
  const route = table.match(normalized);
  if (!route) throw new Error(`no Ingress path matches ${normalized}: ingress-nginx would use its default backend, which the Ingress does not model`);
  const rewriteTarget = annotations['nginx.ingress.kubernetes.io/rewrite-target'];
  if (rewriteTarget !== undefined && rewriteTarget !== '$uri') throw new Error(`rewrite-target ${rewriteTarget} is not modelled here (only $uri)`);
  const upstreamPath = rewriteTarget === '$uri' ? `${escapeLikeNginx(normalized)}${query}` : target;
  return { refused: false, service: route.service, port: route.port, routedOn: normalized, upstreamPath };
}
