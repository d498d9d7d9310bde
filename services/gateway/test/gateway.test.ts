import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger, Lifecycle } from '@blog/common';
import { loadRouteTable } from '@blog/routes';
import { makeTempDir, routeCases } from '@blog/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../src/app.js';

/** A real upstream that answers with its own name and what it received. */
async function startUpstream(name: string) {
  const server = http.createServer((req, res) => {
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
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
