import { pathTrickCases, routeCases } from '@blog/testing';
import { describe, expect, it } from 'vitest';
import { loadRouteTable, orderLikeIngressNginx, parseIngress, pathRefusal } from '../src/index.js';

describe('the Ingress route table', () => {
  const table = loadRouteTable();

  it('is for the posts.com host', () => {
    expect(table.host).toBe('posts.com');
  });

  it('is tried the way ingress-nginx writes it: longest path first, the catch-all last', () => {
    expect(table.routes.map((route) => route.path)).toEqual(['/posts/?(.*)/comments', '/posts/create', '/posts', '/?(.*)']);
  });

  it.each(routeCases)('sends $method $path to $service', ({ path, service }) => {
    expect(table.match(path)?.service).toBe(service);
  });
});

describe('parseIngress', () => {
  const ingress = (annotations: string, paths: string[]) => `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: test
  annotations:
${annotations}
spec:
  rules:
    - host: example.com
      http:
        paths:
${paths.map((p, i) => `          - path: ${p}\n            pathType: ImplementationSpecific\n            backend:\n              service:\n                name: svc-${i}\n                port:\n                  number: ${8000 + i}`).join('\n')}
`;

  it('when use-regex is off, then paths are plain prefixes, dots included', () => {
    const table = parseIngress(ingress('    other: "x"', ['/a.b', '/']));

    expect(table.match('/a.b/c')?.service).toBe('svc-0');
    expect(table.match('/aXb')?.service).toBe('svc-1');
  });

  it('when a path has no backend service, then parsing says which one', () => {
    expect(() => parseIngress(ingress('    x: "y"', ['/a']).replace('name: svc-0', 'name: ""'))).toThrow(/path #1/);
  });

  it('when paths are as long as each other, then the later-sorting path goes first', () => {
    expect(orderLikeIngressNginx([{ path: '/?(.*)' }, { path: '/posts' }]).map((r) => r.path)).toEqual(['/posts', '/?(.*)']);
  });
});

describe('pathRefusal', () => {
  it.each(routeCases)('when the path is a public route ($path), then it is not refused', ({ path }) => {
    expect(pathRefusal(path)).toBeUndefined();
  });

  it.each(pathTrickCases)('when the path is $path ($trick), then it is refused', ({ path }) => {
    expect(pathRefusal(path)).toEqual(expect.any(String));
  });

  it('when dots, slashes or ";" are in the query string only, then the path is not refused', () => {
    expect(pathRefusal('/posts?before=a;b&x=../..%2f')).toBeUndefined();
  });

  it('when the target is not a path (absolute-form, or *), then it is refused', () => {
    expect(pathRefusal('http://posts.com/events')).toBe('no leading "/" (an absolute-form or * target)');
    expect(pathRefusal('*')).toBe('no leading "/" (an absolute-form or * target)');
  });

  it('when each construct appears alone, then the refusal names it', () => {
    expect(pathRefusal('/posts/a%2Eb')).toBe('an encoded dot, slash or backslash');
    expect(pathRefusal('/posts/a%25252fb')).toBe('an encoded dot, slash or backslash');
    expect(pathRefusal('/posts/a\\b')).toBe('a backslash');
    expect(pathRefusal('/posts;x')).toBe('a ";" parameter');
    expect(pathRefusal('/posts//stream')).toBe('an empty segment ("//")');
    expect(pathRefusal('/posts/./stream')).toBe('a dot segment');
    expect(pathRefusal('/posts/..')).toBe('a dot segment');
  });

  it('when dots are part of a name, or another character is encoded, then the path is not refused', () => {
    expect(pathRefusal('/assets/app.1a2b.js')).toBeUndefined();
    expect(pathRefusal('/posts/...')).toBeUndefined();
    expect(pathRefusal('/posts/caf%C3%A9')).toBeUndefined();
  });
});
