import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { createLogger, createMetricsRegistry, Lifecycle, type EventServiceDeps } from '@blog/common';
import { createEventServiceDeps, makeTempDir, NatsServer, natsServerAvailable, repoRoot, startEventBus, waitFor } from '@blog/testing';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEventBusApp } from '../../services/event-bus/src/app.js';
import { JetStreamDelivery } from '../../services/event-bus/src/jetstream-delivery.js';
import { JetStreamStore } from '../../services/event-bus/src/jetstream-store.js';
import { createPostsApp } from '../../services/posts/src/app.js';
import { postsProjection, type PostsState } from '../../services/posts/src/domain/posts.js';
import { authorizationBlock } from './checks.js';
import { loadManifests, ofKind, readRepoFile } from './manifests.js';

/**
 * The NATS users and permissions of both JetStream profiles, for real: a nats-server runs with the
 * cluster's authorization block (infra/k8s-jetstream/nats.yaml) or with the compose profile's whole
 * configuration (infra/compose/nats.conf), and the event bus's own store, delivery and a real posts
 * service run against it, as the bus's user.
 */

const clusterConf = ofKind<IConfigMap>(loadManifests(['infra/k8s-jetstream/nats.yaml']), 'ConfigMap').find((doc) => doc.name === 'nats-config')!.typed.data!['nats.conf']!;
const profiles = [
  // The rest of the cluster's nats.conf (routes, pid file, the pod's name) only runs in the cluster.
  ['the jetstream cluster profile', authorizationBlock(clusterConf)!],
  ['the compose jetstream profile', readRepoFile('infra/compose/nats.conf')],
] as const;

const stream = 'BLOG_EVENTS';
const logger = createLogger('nats-access-test', 'silent');
const postCreated = (title: string) => ({ type: 'PostCreated', data: { id: `post-${randomBytes(6).toString('hex')}`, title } });

/** Runs the built bus until it exits (bounded): its exit code and what it printed. */
async function runBusUntilExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const data = await makeTempDir();
  try {
    const child = spawn(process.execPath, [path.join(repoRoot, 'services/event-bus/dist/index.js')], {
      env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', SUBSCRIBERS: '', DATA_DIR: data.path, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    return { code, output };
  } finally {
    await data.remove();
  }
}

function listen(app: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const server = http.createServer(app).listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise((closed) => (server.closeAllConnections(), server.close(() => closed()))),
      }),
    );
  });
}

describe.runIf(natsServerAvailable() || process.env.CI === 'true')('the NATS users and permissions', () => {
describe.each(profiles)('NATS as %s', (_profile, config) => {
  const password = randomBytes(24).toString('hex');
  const bus = { user: 'event-bus', password };
  let server: NatsServer;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    server = await NatsServer.start({ config, env: { EVENT_BUS_NATS_PASSWORD: password } });
  });
  afterAll(() => server?.destroy());
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A bus store that connects with these credentials (or none). */
  const openStore = async (credentials?: { user: string; password: string }) => {
    const dir = await makeTempDir();
    cleanups.push(() => dir.remove());
    const store = await JetStreamStore.open({ servers: [server.url], stream, replicas: 1, timeoutMs: 5_000, dataDir: dir.path, logger, credentials });
    cleanups.push(() => store.close());
    return store;
  };

  /**
   * Speaks the NATS protocol over a bare socket, as any pod could: CONNECT (with `options`), then
   * PUB to the stream's subject and PING. Resolves with what the server answered.
   */
  function publishRaw(options: Record<string, unknown>, payload: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(server.port, '127.0.0.1');
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        answer += chunk;
        if (/^(-ERR|PONG)/m.test(answer)) socket.end();
      });
      socket.once('connect', () => socket.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, ...options })}\r\nPUB ${stream}.events ${Buffer.byteLength(payload)}\r\n${payload}\r\nPING\r\n`));
      socket.once('close', () => resolve(answer));
      socket.once('error', reject);
      socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer from nats-server: ${answer}`)));
    });
  }

  /** The bus as it runs there (its store, HTTP API and push delivery), pushing to a real posts service. */
  async function startBlog() {
    const dirs = await Promise.all([makeTempDir(), makeTempDir()]);
    cleanups.push(() => Promise.all(dirs.map((dir) => dir.remove())));
    const metrics = createMetricsRegistry('event-bus');
    const store = await JetStreamStore.open({ servers: [server.url], stream, replicas: 1, timeoutMs: 5_000, dataDir: dirs[0].path, logger, metrics, credentials: bus });
    cleanups.push(() => store.close());
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const busApp = await listen(createEventBusApp({ logger, metrics, lifecycle, store }));
    cleanups.push(busApp.close);
    const posts: EventServiceDeps<PostsState> = await createEventServiceDeps(postsProjection, { busUrl: busApp.url, dataDir: dirs[1].path });
    cleanups.push(() => posts.projection.close());
    const postsApp = await listen(createPostsApp(posts));
    cleanups.push(postsApp.close);
    const delivery = new JetStreamDelivery({ store, subscribers: [{ name: 'posts', url: `${postsApp.url}/events` }], logger, metrics, timeoutMs: 2_000, retryMaxDelayMs: 200 });
    await delivery.start();
    cleanups.push(() => delivery.stop());
    const publish = (event: unknown) => fetch(`${busApp.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
    const postsShown = async () => (await (await fetch(`${postsApp.url}/posts`)).json()) as Record<string, { title: string }>;
    return { store, busUrl: busApp.url, posts, publish, postsShown };
  }

  it('when a client publishes to the stream without credentials or with a wrong password, then the server refuses it and the stream is unchanged', async () => {
    const blog = await startBlog();
    await blog.publish(postCreated('already there'));
    const before = (await blog.store.jsm.streams.info(stream)).state.messages;

    const anonymous = await publishRaw({}, '{"id":"anonymous","type":"PostCreated","data":{"id":"a","title":"a"}}');
    const guessed = await publishRaw({ user: 'event-bus', pass: 'guessed' }, '{"id":"guessed","type":"PostCreated","data":{"id":"g","title":"g"}}');

    expect(anonymous).toMatch(/^-ERR 'Authorization Violation'/m);
    expect(guessed).toMatch(/^-ERR 'Authorization Violation'/m);
    expect((await blog.store.jsm.streams.info(stream)).state.messages).toBe(before);
  });

  it('when a bus starts without credentials, with a wrong password or as another user, then it fails with the reason instead of waiting', async () => {
    await expect(openStore()).rejects.toMatchObject({ name: 'AuthorizationError' });
    await expect(openStore({ user: 'event-bus', password: 'guessed' })).rejects.toMatchObject({ name: 'AuthorizationError' });
    await expect(openStore({ user: 'admin', password })).rejects.toMatchObject({ name: 'AuthorizationError' });
  });

  it('when the bus process starts with NATS_USER and NATS_PASSWORD, then it is ready; without them it exits saying the server refused it', async () => {
    const env = { EVENT_STORE: server.url, EVENT_STREAM: stream };

    const running = await startEventBus({ ...env, NATS_USER: bus.user, NATS_PASSWORD: bus.password });
    cleanups.push(() => running.destroy());
    const refused = await runBusUntilExit(env);

    expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/NATS_USER and NATS_PASSWORD are not set/);
    expect(refused.output).toMatch(/"level":"fatal".*"msg":"cannot open the event log: Authorization Violation"/);
  });

  it('when the bus connects as its user, then it creates the stream protected, publishes, pages the log and delivers it to a service', async () => {
    const blog = await startBlog();

    const published = await blog.publish(postCreated('through the protected stream'));
    const body = (await published.json()) as { seq: number; data: { id: string } };

    expect(published.status).toBe(201);
    expect((await blog.store.jsm.streams.info(stream)).config).toMatchObject({ deny_delete: true, deny_purge: true });
    const page = await fetch(`${blog.busUrl}/events?after=${body.seq - 1}&limit=10`);
    expect(await page.json()).toEqual([expect.objectContaining({ seq: body.seq, type: 'PostCreated' })]);
    await waitFor(async () => ((await blog.postsShown())[body.data.id] ? true : undefined), { what: 'posts to get the event pushed to it' });
  });

  it("when the bus's user tries to delete or purge the stream, delete a message, or use another stream, then it is refused and the log is whole", async () => {
    const blog = await startBlog();
    await blog.publish(postCreated('kept'));
    const before = (await blog.store.jsm.streams.info(stream)).state.messages;
    const { jsm } = await openStore(bus);

    await expect(jsm.streams.delete(stream)).rejects.toThrow();
    await expect(jsm.streams.purge(stream)).rejects.toThrow();
    await expect(jsm.streams.deleteMessage(stream, 1)).rejects.toThrow();
    await expect(jsm.streams.add({ name: 'ELSEWHERE', subjects: ['elsewhere.>'] })).rejects.toThrow();

    expect((await blog.store.jsm.streams.info(stream)).state.messages).toBe(before);
  });

  it("when a malformed message is injected with the bus's credentials, then it is set aside as a dead letter and publishing and delivery go on", async () => {
    const blog = await startBlog();
    const first = (await (await blog.publish(postCreated('before the injection'))).json()) as { seq: number; data: { id: string } };
    const intruder = await openStore(bus);

    await intruder.js.publish(`${stream}.events`, '{"id":"forged","type":"PostCreated","data":{"id":"forged","title":"no"},"admin":true}');
    const after = await blog.publish(postCreated('after the injection'));
    const afterBody = (await after.json()) as { seq: number; data: { id: string } };

    expect(after.status).toBe(201);
    expect(afterBody.seq).toBe(first.seq + 2);
    const page = (await (await fetch(`${blog.busUrl}/events?after=${first.seq}`)).json()) as Array<{ seq: number; type: string }>;
    expect(page.map((event) => [event.seq, event.type])).toEqual([
      [first.seq + 1, 'DeadLetter'],
      [first.seq + 2, 'PostCreated'],
    ]);
    const shown = await waitFor(async () => {
      const view = await blog.postsShown();
      return view[afterBody.data.id] ? view : undefined;
    }, { what: 'posts to get the event after the dead letter' });
    expect(Object.keys(shown)).not.toContain('forged');
    expect(blog.posts.projection.lastSeq).toBe(afterBody.seq);
    expect(await (await fetch(`${blog.busUrl}/metrics`)).text()).toMatch(/^event_bus_dead_letters_total\{[^}]*\} 1$/m);
  });
});
});
