import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger, Lifecycle, limits } from '@blog/common';
import { loadRouteTable } from '@blog/routes';
import { makeTempDir, pathTrickCases, routeCases } from '@blog/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../src/app.js';

/** A real upstream that answers with its own name and what it received, and remembers every request. */
async function startUpstream(name: string) {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/posts/stream?hold=open') {
        // A stream that stays open: the first event must get through before the response ends.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: snapshot\ndata: {}\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upstream: name, method: req.method, url: req.url, body, forwardedFor: req.headers['x-forwarded-for'] ?? null }));
    });
  });
  server.on('upgrade', (req, socket) => {
    received.push(`${req.method} ${req.url} (upgrade)`);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The gateway on a real port, with its upgrade handler, as index.ts runs it. */
async function listen(gateway: ReturnType<typeof createGateway>) {
  const server = http.createServer(gateway.app);
  server.on('upgrade', (req, socket, head) => gateway.upgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

interface RawRequest {
  method: string;
  /** Sent exactly as written: no client library resolves or re-encodes it. */
  path: string;
  headers?: http.OutgoingHttpHeaders;
  /** Written in these chunks (chunked transfer unless a content-length header is given). */
  chunks?: Buffer[];
}

function rawRequest(port: number, { method, path: target, headers = {}, chunks = [] }: RawRequest) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    // An answer may come before the whole body is sent: writing the rest may then fail, which is fine.
    for (const chunk of chunks) req.write(chunk, () => {});
    req.end();
  });
}

/** An upgrade request: the raw status line of the answer, or how the socket ended. */
function rawUpgrade(port: number, target: string) {
  return new Promise<{ status: number | undefined; text: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, headers: { connection: 'upgrade', upgrade: 'websocket' } });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode, text: '' });
    });
    req.on('error', reject);
    req.end();
  });
}

const logger = createLogger('gateway-test', 'silent');
const ready = () => {
  const lifecycle = new Lifecycle();
  lifecycle.markReady();
  return lifecycle;
};

describe('gateway', () => {
  const services = ['posts-clusterip-srv', 'comments-srv', 'query-srv', 'client-srv'] as const;
  let upstreams: Array<Awaited<ReturnType<typeof startUpstream>>>;
  let gateway: ReturnType<typeof createGateway>;

  beforeAll(async () => {
    upstreams = await Promise.all(services.map(startUpstream));
    gateway = createGateway({ logger, lifecycle: ready(), routes: loadRouteTable(), upstreams: new Map(services.map((name, i) => [name, upstreams[i]!.url])) });
  });
  afterAll(async () => {
    gateway.close();
    await Promise.all(upstreams.map((upstream) => upstream.close()));
  });

  it.each(routeCases)('routes $method $path to $service, like the Ingress', async ({ method, path: url, service }) => {
    const response = method === 'GET' ? await request(gateway.app).get(url) : await request(gateway.app).post(url).send({ probe: true });

    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ upstream: service, method, url });
  });

  it('passes the body through untouched', async () => {
    const body = '{"title":  "spacing kept"}';

    const response = await request(gateway.app).post('/posts/create').set('content-type', 'application/json').send(body);

    expect(response.body).toMatchObject({ upstream: 'posts-clusterip-srv', body });
  });

  it('streams server-sent events as they come, without waiting for the end', async () => {
    const server = http.createServer(gateway.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const controller = new AbortController();
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/posts/stream?hold=open`, { signal: controller.signal });
      const reader = response.body!.getReader();
      const { value } = await reader.read();

      expect(response.headers.get('content-type')).toBe('text/event-stream');
      expect(new TextDecoder().decode(value)).toContain('event: snapshot');
    } finally {
      controller.abort();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('answers its own health and readiness', async () => {
    expect((await request(gateway.app).get('/healthz')).body).toEqual({ status: 'ok' });
    expect((await request(gateway.app).get('/readyz')).status).toBe(200);
  });

  describe('when a path is spelled to leave its public prefix', () => {
    let entry: Awaited<ReturnType<typeof listen>>;
    beforeAll(async () => {
      entry = await listen(gateway);
    });
    afterAll(() => entry.close());
    const forwarded = () => upstreams.flatMap((upstream) => upstream.received);

    it.each(pathTrickCases)('then $method $path ($trick) is refused with 400 JSON and reaches no service', async ({ method, path: target }) => {
      const before = forwarded().length;
      const body = method === 'POST' ? { headers: { 'content-type': 'application/json', 'content-length': 2 }, chunks: [Buffer.from('{}')] } : {};

      const response = await rawRequest(entry.port, { method, path: target, ...body });

      expect(response.status).toBe(400);
      expect(response.headers['x-served-by']).toBe('gateway');
      expect(JSON.parse(response.text)).toEqual({ error: { code: 'invalid_path', message: expect.any(String) } });
      expect(forwarded().slice(before)).toEqual([]);
    });

    it('then an upgrade to such a path is refused with 400 too and reaches no service', async () => {
      const before = forwarded().length;

      const answers = await Promise.all(['/posts/%2e%2e/metrics', '/posts/stream/..%2fevents', '/posts\\..\\healthz'].map((target) => rawUpgrade(entry.port, target)));

      expect(answers.map((answer) => answer.status)).toEqual([400, 400, 400]);
      expect(answers.map((answer) => (JSON.parse(answer.text) as { error: { code: string } }).error.code)).toEqual(['invalid_path', 'invalid_path', 'invalid_path']);
      expect(forwarded().slice(before)).toEqual([]);
    });

    it('then a clean path with a query string still goes through, byte for byte', async () => {
      const response = await rawRequest(entry.port, { method: 'GET', path: '/posts/abc/comments?note=a;b/../c' });

      expect(response.status).toBe(200);
      expect(JSON.parse(response.text)).toMatchObject({ upstream: 'comments-srv', url: '/posts/abc/comments?note=a;b/../c' });
    });
  });

  describe('when a body is over the services\' limit', () => {
    let entry: Awaited<ReturnType<typeof listen>>;
    beforeAll(async () => {
      entry = await listen(gateway);
    });
    afterAll(() => entry.close());
    const forwarded = () => upstreams.flatMap((upstream) => upstream.received);
    const json = { 'content-type': 'application/json' };

    it('then a declared length over it is refused with 413 JSON, like the services do, and reaches no service', async () => {
      const before = forwarded().length;
      const body = Buffer.alloc(limits.bodyMaxBytes + 1, 'a');

      const response = await rawRequest(entry.port, { method: 'POST', path: '/posts/create', headers: { ...json, 'content-length': body.length }, chunks: [body] });

      expect(response.status).toBe(413);
      expect(response.headers['x-served-by']).toBe('gateway');
      expect(JSON.parse(response.text)).toEqual({ error: { code: 'payload_too_large', message: expect.any(String) } });
      expect(forwarded().slice(before)).toEqual([]);
    });

    it('then a chunked body that grows over it is refused with 413 JSON and reaches no service', async () => {
      const before = forwarded().length;
      const chunks = Array.from({ length: 4 }, () => Buffer.alloc(limits.bodyMaxBytes / 2, 'a'));

      const response = await rawRequest(entry.port, { method: 'POST', path: '/posts/0b6c1f2e-1d2a-4c55-9a3e-2f9f7b1c0d11/comments', headers: json, chunks });

      expect(response.status).toBe(413);
      expect(JSON.parse(response.text)).toEqual({ error: { code: 'payload_too_large', message: expect.any(String) } });
      expect(forwarded().slice(before)).toEqual([]);
    });

    it('then a body of exactly the limit still goes through untouched, chunked or not', async () => {
      const body = Buffer.alloc(limits.bodyMaxBytes, 'b');

      const declared = await rawRequest(entry.port, { method: 'POST', path: '/posts/create', headers: { ...json, 'content-length': body.length }, chunks: [body] });
      const chunked = await rawRequest(entry.port, { method: 'POST', path: '/posts/create', headers: json, chunks: [body.subarray(0, 1000), body.subarray(1000)] });

      expect(declared.status).toBe(200);
      expect(JSON.parse(declared.text)).toMatchObject({ upstream: 'posts-clusterip-srv', body: body.toString() });
      expect(chunked.status).toBe(200);
      expect(JSON.parse(chunked.text)).toMatchObject({ upstream: 'posts-clusterip-srv', body: body.toString() });
    });
  });
});

describe('gateway, when an upstream is down', () => {
  it('answers 502 with a JSON error naming the service', async () => {
    const gateway = createGateway({
      logger,
      lifecycle: ready(),
      routes: loadRouteTable(),
      upstreams: new Map([
        ['posts-clusterip-srv', 'http://127.0.0.1:9'],
        ['comments-srv', 'http://127.0.0.1:9'],
        ['query-srv', 'http://127.0.0.1:9'],
        ['client-srv', 'http://127.0.0.1:9'],
      ]),
    });

    const response = await request(gateway.app).get('/posts');

    expect(response.status).toBe(502);
    expect(response.body).toEqual({ error: { code: 'upstream_unavailable', message: expect.stringContaining('query-srv') } });
    gateway.close();
  });
});

describe('gateway serving the built client', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let gateway: ReturnType<typeof createGateway>;

  beforeAll(async () => {
    dir = await makeTempDir();
    await mkdir(path.join(dir.path, 'assets'));
    await writeFile(path.join(dir.path, 'index.html'), '<!doctype html><title>Blog</title>');
    await writeFile(path.join(dir.path, 'assets', 'app.js'), 'console.log(1)');
    const others = new Map(['posts-clusterip-srv', 'comments-srv', 'query-srv'].map((name) => [name, 'http://127.0.0.1:9']));
    gateway = createGateway({ logger, lifecycle: ready(), routes: loadRouteTable(), upstreams: others, clientDir: dir.path });
  });
  afterAll(async () => {
    gateway.close();
    await dir.remove();
  });

  it('serves the index, the assets, and the index for any other page', async () => {
    expect((await request(gateway.app).get('/')).text).toContain('<title>Blog</title>');
    expect((await request(gateway.app).get('/assets/app.js')).text).toBe('console.log(1)');
    expect((await request(gateway.app).get('/some/page').set('accept', 'text/html')).text).toContain('<title>Blog</title>');
  });

  it('serves the client with security headers: a same-origin CSP that keeps plain http working, nosniff, no CORS', async () => {
    const response = await request(gateway.app).get('/').set('origin', 'https://evil.example');

    expect(response.headers['content-security-policy']).toContain("default-src 'self'");
    expect(response.headers['content-security-policy']).toContain("script-src 'self'");
    expect(response.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers 404 JSON for a missing asset that is not a page', async () => {
    const response = await request(gateway.app).get('/assets/missing.js').set('accept', 'application/javascript');

    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('not_found');
  });

  it('refuses to start without an upstream for every Service in the Ingress', () => {
    expect(() => createGateway({ logger, lifecycle: ready(), routes: loadRouteTable(), upstreams: new Map() })).toThrow(/No upstream for .*posts-clusterip-srv/);
  });
});
