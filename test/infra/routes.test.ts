import { routeCases } from '@blog/testing';
import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { describe, expect, it } from 'vitest';
import { loadRouteTable } from '@blog/routes';
import { createHttpRouteMatcher, pathPrefixMatches } from './http-route.js';
import { gatewayApiGlob, loadManifests, globRepo, ofKind } from './manifests.js';

/** One route table: the Gateway API HTTPRoute routes every public path like the Ingress does. */

const ingress = loadRouteTable();
const [httpRoute] = ofKind<IHTTPRoute>(loadManifests(globRepo(gatewayApiGlob)), 'HTTPRoute');
const routeByGateway = createHttpRouteMatcher(httpRoute!.typed);

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
