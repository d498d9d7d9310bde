import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { AppError, createErrorHandler, describeError, limits, requestLogging, type Lifecycle, type Logger } from '@blog/common';
import { pathRefusal, type RouteTable } from '@blog/routes';
import express, { type Express, type Request } from 'express';
import helmet from 'helmet';
import { createProxyServer } from 'http-proxy-3';
import getRawBody from 'raw-body';

export interface GatewayDeps {
  logger: Logger;
  lifecycle: Lifecycle;
  routes: RouteTable;
  /** Kubernetes Service name (as in the Ingress) → base URL reachable from here. */
  upstreams: ReadonlyMap<string, string>;
  /** Built client to serve for `clientService`, instead of proxying to it. */
  clientDir?: string | undefined;
  clientService?: string;
}

export interface Gateway {
  app: Express;
  /** WebSocket upgrades (Vite's hot reload in `pnpm dev`) follow the same routes. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

/**
 * The public entry of `pnpm start` and compose: every request goes where the Ingress would send it.
 * A path that hops could read in different ways is refused (see pathRefusal), and every other one
 * is forwarded byte for byte, so the path routed on is the path the service gets. Bodies are passed
 * through untouched (no JSON parsing here), and server-sent events are streamed.
 */
export function createGateway({ logger, lifecycle, routes, upstreams, clientDir, clientService = 'client-srv' }: GatewayDeps): Gateway {
  const missing = routes.routes.filter((route) => !upstreams.has(route.service) && !(clientDir && route.service === clientService));
  if (missing.length > 0) throw new Error(`No upstream for ${missing.map((route) => route.service).join(', ')}: set UPSTREAMS (or CLIENT_DIR for ${clientService})`);

  // toProxy: forward req.url as it came. Without it http-proxy-3 rebuilds the path through a WHATWG
  // URL, which resolves dot segments (encoded ones too) and turns backslashes into slashes: the
  // service would get another path than the one routed on.
  const proxy = createProxyServer({ xfwd: true, toProxy: true });
  proxy.on('error', (error, req, target) => {
    const service = routes.match(pathOf(req.url))?.service ?? 'upstream';
    logger.warn({ err: error, service, url: req.url }, 'upstream unreachable');
    if ('writeHead' in target && !target.headersSent) {
      target.writeHead(502, { 'content-type': 'application/json' });
      target.end(JSON.stringify({ error: { code: 'upstream_unavailable', message: `The ${service} service is unreachable; try again shortly` } }));
    } else {
      target.destroy();
    }
  });

  const app = express();
  app.disable('x-powered-by');
  // Security headers for what the gateway answers itself (proxied answers bring their service's).
  // The built client needs nothing from other origins; Vite's dev server (no clientDir) injects
  // inline scripts, so it gets no CSP. Plain http must keep working: no upgrade-insecure-requests.
  app.use(
    helmet({
      contentSecurityPolicy: clientDir ? { directives: { upgradeInsecureRequests: null } } : false,
      strictTransportSecurity: false,
    }),
  );
  // Proxied answers carry their service's own x-served-by; this one marks the gateway's.
  app.use((_req, res, next) => {
    res.setHeader('x-served-by', 'gateway');
    next();
  });
  app.use(requestLogging(logger));
  app.use((req, _res, next) => {
    const refusal = pathRefusal(req.url);
    next(refusal && refusedPath(refusal));
  });
  // The gateway's own probes, answered before routing (the client it stands in for would answer them too).
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', (_req, res) => {
    res.status(lifecycle.isReady() ? 200 : 503).json({ status: lifecycle.isReady() ? 'ready' : 'not_ready' });
  });

  // Standing in for the client Service, the gateway answers as it would.
  const serveClient = clientDir
    ? express.static(path.resolve(clientDir), { index: 'index.html', fallthrough: true, setHeaders: (res) => res.setHeader('x-served-by', 'client') })
    : undefined;
  app.use(async (req, res, next) => {
    const route = routes.match(req.path);
    if (!route) return next(new AppError({ status: 404, code: 'not_found', message: `No route for ${req.path}` }));
    if (serveClient && route.service === clientService) return serveClient(req, res, next);
    const body = await readLimitedBody(req);
    proxy.web(req, res, { target: upstreams.get(route.service)!, ...(body && { buffer: Readable.from([body]) }) });
  });
  // The client is a single-page app: any other page it links to is its index.html.
  if (clientDir) {
    app.get('/{*path}', (req, res, next) => {
      if (!req.accepts('html')) return next();
      res.setHeader('x-served-by', 'client');
      res.sendFile(path.resolve(clientDir, 'index.html'));
    });
  }
  app.use((req, _res, next) => next(new AppError({ status: 404, code: 'not_found', message: `No route for ${req.method} ${req.path}` })));
  app.use(createErrorHandler(logger));

  return {
    app,
    upgrade(req, socket, head) {
      const refusal = pathRefusal(req.url ?? '');
      if (refusal) {
        const { status, body } = describeError(refusedPath(refusal));
        const json = JSON.stringify(body);
        socket.end(`HTTP/1.1 ${status} Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\nconnection: close\r\nx-served-by: gateway\r\n\r\n${json}`);
        return;
      }
      const route = routes.match(pathOf(req.url));
      const target = route && upstreams.get(route.service);
      if (!target) {
        socket.destroy();
        return;
      }
      proxy.ws(req, socket, head, { target });
    },
    close: () => proxy.close(),
  };
}

const pathOf = (url: string | undefined): string => (url ?? '/').split(/[?#]/, 1)[0]!;

const refusedPath = (refusal: string) =>
  new AppError({ status: 400, code: 'invalid_path', message: `The path has ${refusal}: refused, as servers read such paths in different ways` });

/**
 * The services refuse a body over limits.bodyMaxBytes with 413; the gateway refuses it first, the
 * same way (raw-body is what their body parser uses), so an oversized body never crosses the
 * network twice. A body within the limit is at most 100 kB: it is read whole, then forwarded
 * untouched. Requests without a body are streamed as they are.
 */
async function readLimitedBody(req: Request): Promise<Buffer | undefined> {
  if (req.headers['transfer-encoding'] === undefined && req.headers['content-length'] === undefined) return undefined;
  return getRawBody(req, { limit: limits.bodyMaxBytes, length: req.headers['content-length'] });
}
