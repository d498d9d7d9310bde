import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/** The probes the cluster sends to the client in `skaffold dev`, answered like nginx does in production. */
const healthRoutes: Plugin = {
  name: 'blog-health-routes',
  configureServer(server) {
    for (const path of ['/healthz', '/readyz']) {
      server.middlewares.use(path, (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status: path === '/healthz' ? 'ok' : 'ready' }));
      });
    }
  },
};

// No proxy: the gateway on port 3000 sits in front of this server and routes /posts/... to the
// services, so the browser only ever talks to one origin with relative URLs.
export default defineConfig({
  plugins: [react(), healthRoutes],
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    // Behind the Ingress in `skaffold dev` the page is served as posts.com.
    allowedHosts: ['posts.com'],
  },
  preview: {
    host: '127.0.0.1',
  },
});
