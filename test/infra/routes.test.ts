import { pathTrickCases, routeCases } from '@blog/testing';
import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { describe, expect, it } from 'vitest';
import { loadRouteTable } from '@blog/routes';
import { createHttpRouteMatcher, forwardLikeEnvoyGateway, normalizeLikeEnvoy, pathPrefixMatches } from './http-route.js';
import { escapeLikeNginx, forwardLikeIngressNginx, normalizeLikeNginx } from './ingress-nginx.js';
import { gatewayApiGlob, k8sGlob, loadManifests, globRepo, ofKind } from './manifests.js';

/** One route table: the Gateway API HTTPRoute routes every public path like the Ingress does. */

const ingress = loadRouteTable();
const [ingressDoc] = ofKind<IIngress>(loadManifests(globRepo(k8sGlob)), 'Ingress');
const ingressAnnotations = ingressDoc!.typed.metadata?.annotations ?? {};
const [httpRoute] = ofKind<IHTTPRoute>(loadManifests(globRepo(gatewayApiGlob)), 'HTTPRoute');
const routeByGateway = createHttpRouteMatcher(httpRoute!.typed);

/**
 * The readings an upstream may give the path it receives: Node and Express take it as written; the
 * client's nginx, and any framework that normalizes, decode and resolve it once. None of them
 * reads a backslash as a slash (all run on Linux), and none decodes twice.
 */
const readings = [
  ['as written', (path: string): string | undefined => path],
  ['decoded and resolved once', normalizeLikeNginx],
] as const;

/** Routes every service answers itself and no public route may lead to. */
const internalRoute = /^\/(?:events|metrics|healthz|readyz)\/?$/i;

/**
 * Whatever the upstream's reading of the path it gets, it is a path of the route the entry took,
 * and no internal route of a service. (The client Service answers every path with the app, or
 * with its own probes, exactly as it does for `/events` or `/healthz` asked plainly.)
 */
function expectOneRoute(outcome: { service: string; routedOn: string; upstreamPath: string }, routeOf: (path: string) => string | undefined) {
  const received = outcome.upstreamPath.split(/[?#]/, 1)[0]!;
  for (const [name, read] of readings) {
    const seen = read(received);
    // A path this reading cannot read is refused by such an upstream: it reaches nothing.
    if (seen === undefined) continue;
    const where = `${outcome.service} got ${outcome.upstreamPath} (routed on ${outcome.routedOn}); ${name} it is ${seen}`;
    expect(routeOf(seen), where).toBe(outcome.service);
    if (outcome.service !== 'client-srv') expect(seen, where).not.toMatch(internalRoute);
  }
}

describe('the HTTPRoute and the Ingress', () => {
  it('serve the same host', () => {
    expect(httpRoute?.typed.spec.hostnames).toEqual([ingress.host]);
  });

  it.each(routeCases)('send $method $path to $service', ({ method, path, service }) => {
    const byIngress = ingress.match(path);
    const byGateway = routeByGateway({ method, path });

    expect(byIngress?.service, `Ingress for ${path} (matched ${byIngress?.path})`).toBe(service);
    expect(byGateway && { service: byGateway.service, port: byGateway.port }, `HTTPRoute for ${method} ${path} (matched ${byGateway?.matchedBy})`).toEqual({
      service: byIngress?.service,
      port: byIngress?.port,
    });
  });

});

describe('a path spelled to leave its public prefix', () => {
  it.each(pathTrickCases)('through the Ingress, $method $path ($trick) is refused, or reaches only the route it was matched on', ({ path }) => {
    const outcome = forwardLikeIngressNginx(ingress, ingressAnnotations, path);

    if (outcome.refused) expect(outcome.status).toBe(400);
    else expectOneRoute(outcome, (seen) => ingress.match(seen)?.service);
  });

  it.each(pathTrickCases)('through the HTTPRoute, $method $path ($trick) reaches only the route it was matched on', ({ method, path }) => {
    const first = forwardLikeEnvoyGateway(routeByGateway, { method, target: path });
    // A redirect reaches no service; the client's next request is for the path it names.
    const outcome = first.redirect === undefined ? first : forwardLikeEnvoyGateway(routeByGateway, { method, target: first.redirect });

    expect(outcome.redirect, `a second redirect for ${path}`).toBeUndefined();
    expectOneRoute(outcome as Exclude<typeof outcome, { redirect: string }>, (seen) => routeByGateway({ method, path: seen })?.service);
  });

  it.each(routeCases)('a public path ($method $path) reaches its service through either entry as written', ({ method, path, service }) => {
    expect(forwardLikeIngressNginx(ingress, ingressAnnotations, path)).toMatchObject({ service, upstreamPath: path });
    expect(forwardLikeEnvoyGateway(routeByGateway, { method, target: path })).toMatchObject({ service, upstreamPath: path });
  });
});

describe('the ingress-nginx and Envoy path models', () => {
  // What nginx 1.22 did with each path, run with the location blocks ingress-nginx writes for the Ingress.
  it.each([
    ['/posts/%2e%2e/metrics', '/metrics'],
    ['/POSTS/%2E%2E/METRICS', '/METRICS'],
    ['/posts/..%2fmetrics', '/metrics'],
    ['/posts/create/..%2F..%2Fevents', '/events'],
    ['/posts/%252e%252e/metrics', '/posts/%2e%2e/metrics'],
    ['/posts\\..\\metrics', '/posts\\..\\metrics'],
    ['/posts/..;/metrics', '/posts/..;/metrics'],
    ['/posts//../metrics', '/metrics'],
    ['//posts', '/posts'],
    ['/posts/./metrics', '/posts/metrics'],
    ['/posts/create/..', '/posts/'],
    ['/posts/...', '/posts/...'],
    ['/%2e%2e/events', undefined],
    ['/posts/%2e%2e%2f%2e%2e%2fevents', undefined],
    ['/posts/%zz', undefined],
    ['/posts/%00', undefined],
  ])('nginx reads %s as %s (undefined: it answers 400)', (path, expected) => {
    expect(normalizeLikeNginx(path)).toBe(expected);
  });

  it.each([
    ['/posts/a?b/comments', '/posts/a%3Fb/comments'],
    ['/posts\\..\\metrics', '/posts%5C..%5Cmetrics'],
    ["/posts/!$&'()*+,;=:@[]|^`\"<>#~", "/posts/!$&'()*+,;=:@[]%7C%5E%60%22%3C%3E%23~"],
    ['/posts/caf\u00c3\u00a9', '/posts/caf%C3%A9'],
  ])('nginx sends a rewritten %s on as %s', (uri, expected) => {
    expect(escapeLikeNginx(uri)).toBe(expected);
  });

  it.each([
    ['/posts/%2e%2e/metrics', '/metrics'],
    ['/posts/.%2E/%2E%2E/events', '/events'],
    ['/../../events', '/events'],
    ['/posts\\..\\metrics', '/metrics'],
    ['/posts//../metrics', '/posts/metrics'],
    ['/posts/%252e%252e/metrics', '/posts/%252e%252e/metrics'],
    ['/posts/%41bc', '/posts/Abc'],
  ])('Envoy reads %s as %s', (path, expected) => {
    expect(normalizeLikeEnvoy(path)).toBe(expected);
  });

  it('when a path has an escaped slash, then Envoy redirects to it unescaped and normalized, keeping the query', () => {
    expect(forwardLikeEnvoyGateway(routeByGateway, { method: 'GET', target: '/posts/..%2Fmetrics?x=1' })).toEqual({ redirect: '/metrics?x=1' });
  });
});

describe('the HTTPRoute evaluator', () => {
  const route = (rules: Array<{ type: 'Exact' | 'PathPrefix' | 'RegularExpression'; value: string; service: string }>): IHTTPRoute => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'test' },
    spec: { rules: rules.map(({ type, value, service }) => ({ matches: [{ path: { type, value } }], backendRefs: [{ name: service, port: 80 }] })) },
  });

  it('when Exact, RegularExpression and PathPrefix all match, then Exact wins, then the regex, whatever the rule order', () => {
    const match = createHttpRouteMatcher(
      route([
        { type: 'PathPrefix', value: '/a', service: 'prefix' },
        { type: 'RegularExpression', value: '/a/.*', service: 'regex' },
        { type: 'Exact', value: '/a/b', service: 'exact' },
      ]),
    );

    expect(match({ path: '/a/b' })?.service).toBe('exact');
    expect(match({ path: '/a/c' })?.service).toBe('regex');
    expect(match({ path: '/a' })?.service).toBe('prefix');
  });

  it('when several regexes match, then the longest pattern wins (Envoy Gateway)', () => {
    const match = createHttpRouteMatcher(
      route([
        { type: 'RegularExpression', value: '/.*', service: 'short' },
        { type: 'RegularExpression', value: '/a/[0-9]+', service: 'long' },
      ]),
    );

    expect(match({ path: '/a/12' })?.service).toBe('long');
    expect(match({ path: '/a/x' })?.service).toBe('short');
  });

  it('when a regex matches only part of the path, then it does not match: regexes are anchored at both ends', () => {
    const match = createHttpRouteMatcher(route([{ type: 'RegularExpression', value: '/a/[^/]+/c', service: 'regex' }]));

    expect(match({ path: '/a/b/c' })?.service).toBe('regex');
    expect(match({ path: '/a/b/c/d' })).toBeUndefined();
    expect(match({ path: '/x/a/b/c' })).toBeUndefined();
  });

  it('when several prefixes match, then the longest wins', () => {
    const match = createHttpRouteMatcher(
      route([
        { type: 'PathPrefix', value: '/', service: 'root' },
        { type: 'PathPrefix', value: '/posts', service: 'posts' },
      ]),
    );

    expect(match({ path: '/posts/1' })?.service).toBe('posts');
    expect(match({ path: '/other' })?.service).toBe('root');
  });

  it('PathPrefix matches whole segments only, with or without a trailing slash on the prefix', () => {
    expect(pathPrefixMatches('/posts', '/posts')).toBe(true);
    expect(pathPrefixMatches('/posts', '/posts/')).toBe(true);
    expect(pathPrefixMatches('/posts', '/posts/stream')).toBe(true);
    expect(pathPrefixMatches('/posts', '/postsX')).toBe(false);
    expect(pathPrefixMatches('/posts/', '/posts')).toBe(true);
    expect(pathPrefixMatches('/', '/anything')).toBe(true);
  });

  it('paths are case-sensitive', () => {
    const match = createHttpRouteMatcher(route([{ type: 'Exact', value: '/posts', service: 'posts' }]));

    expect(match({ path: '/Posts' })).toBeUndefined();
  });

  it('when the route in the manifests loses its /posts/create rule, then POST /posts/create goes to query and the comparison would fail', () => {
    const withoutCreate = structuredClone(httpRoute!.typed);
    withoutCreate.spec.rules = withoutCreate.spec.rules?.filter((rule) => !rule.matches?.some((m) => m.path?.value?.includes('create')));

    expect(createHttpRouteMatcher(withoutCreate)({ method: 'POST', path: '/posts/create' })?.service).toBe('query-srv');
    expect(ingress.match('/posts/create')?.service).toBe('posts-clusterip-srv');
  });
});
