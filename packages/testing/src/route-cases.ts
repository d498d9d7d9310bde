/**
 * The routing table of the client issue, as cases every entry point must agree on: the Ingress
 * (evaluated like ingress-nginx), `pnpm start`'s gateway, and the compose entry. Services are named
 * as in the Ingress.
 */
export interface RouteCase {
  method: 'GET' | 'POST';
  path: string;
  service: 'posts-clusterip-srv' | 'comments-srv' | 'query-srv' | 'client-srv';
}

export const routeCases: readonly RouteCase[] = [
  { method: 'POST', path: '/posts/create', service: 'posts-clusterip-srv' },
  { method: 'POST', path: '/posts/0b6c1f2e-1d2a-4c55-9a3e-2f9f7b1c0d11/comments', service: 'comments-srv' },
  { method: 'GET', path: '/posts/0b6c1f2e-1d2a-4c55-9a3e-2f9f7b1c0d11/comments', service: 'comments-srv' },
  { method: 'GET', path: '/posts/abc/comments', service: 'comments-srv' },
  { method: 'GET', path: '/posts', service: 'query-srv' },
  { method: 'GET', path: '/posts/', service: 'query-srv' },
  { method: 'GET', path: '/posts/stream', service: 'query-srv' },
  // ingress-nginx regexes are anchored at the start only: what follows a matched prefix is the same route
  { method: 'GET', path: '/posts/abc/comments/', service: 'comments-srv' },
  { method: 'POST', path: '/posts/create/', service: 'posts-clusterip-srv' },
  { method: 'GET', path: '/postsX', service: 'query-srv' },
  // ingress-nginx matches case-insensitively
  { method: 'GET', path: '/Posts', service: 'query-srv' },
  { method: 'POST', path: '/POSTS/CREATE', service: 'posts-clusterip-srv' },
  { method: 'GET', path: '/', service: 'client-srv' },
  { method: 'GET', path: '/index.html', service: 'client-srv' },
  { method: 'GET', path: '/assets/app.js', service: 'client-srv' },
  { method: 'GET', path: '/about', service: 'client-srv' },
  // The services' internal routes are not public: these land on the client, never on a service.
  { method: 'GET', path: '/events', service: 'client-srv' },
  { method: 'POST', path: '/events', service: 'client-srv' },
  { method: 'GET', path: '/metrics', service: 'client-srv' },
];
