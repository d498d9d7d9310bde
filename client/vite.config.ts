import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// No proxy: the gateway on port 3000 sits in front of this server and routes /posts/... to the
// services, so the browser only ever talks to one origin with relative URLs.
export default defineConfig({
  plugins: [react()],
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
