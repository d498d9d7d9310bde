import { routeCases } from '@blog/testing';
import { describe, expect, it } from 'vitest';
import { loadRouteTable, orderLikeIngressNginx, parseIngress } from '../src/index.js';

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
