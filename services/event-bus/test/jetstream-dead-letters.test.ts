import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createLogger, createMetricsRegistry, Lifecycle, openDatabase, type DeliveryEnvelope } from '@blog/common';
import { makeTempDir, NatsServer, natsServerAvailable, waitFor } from '@blog/testing';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEventBusApp } from '../src/app.js';
import { JetStreamDelivery } from '../src/jetstream-delivery.js';
import { indexFile, JetStreamStore } from '../src/jetstream-store.js';

/**
 * Messages in the stream that are not events (only the bus should publish there, but anyone with
 * its NATS credentials can): each is set aside as a dead letter and served as a DeadLetter event in
 * its place, so that the log stays contiguous and nothing stalls behind it.
 */

const postCreated = (title: string) => ({ type: 'PostCreated', data: { id: `post-${Math.random().toString(36).slice(2)}`, title } });

interface LogLine {
  level: string;
  msg: string;
  seq?: number;
  reason?: string;
}

describe.runIf(natsServerAvailable() || process.env.CI === 'true')('dead letters in the JetStream stream', () => {
  let server: NatsServer;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(() => server?.destroy());
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  let streams = 0;
  /** A bus on a stream of its own, its logs and its metrics at hand. */
  async function openBus({ stream = `DEAD_${process.pid}_${(streams += 1)}`, dataDir, cache }: { stream?: string; dataDir?: string; cache?: { maxEvents: number; maxBytes: number } } = {}) {
    if (!dataDir) {
      const dir = await makeTempDir();
      cleanups.push(() => dir.remove());
      dataDir = dir.path;
    }
    const lines: LogLine[] = [];
    const logger = createLogger('event-bus-test', 'warn', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    const metrics = createMetricsRegistry('event-bus');
    const store = await JetStreamStore.open({ servers: [server.url], stream, replicas: 1, timeoutMs: 5_000, dataDir, logger, metrics, ...(cache ? { cache } : {}) });
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const app = createEventBusApp({ logger, metrics, lifecycle, store });
    const close = () => store.close();
    cleanups.push(close);
    const deadLetterCount = async () => Number(/^event_bus_dead_letters_total\{[^}]*\} (\d+)$/m.exec((await request(app).get('/metrics')).text)?.[1]);
    return { store, app, lines, dataDir, stream, close, deadLetterCount };
  }

  /** Publishes a raw message, as anyone with the bus's credentials could. */
  const inject = (store: JetStreamStore, body: string) => store.js.publish(store.subject, body);

  it.each([
    ['not JSON', 'definitely { not json', 'not JSON'],
    ['a JSON array', '[1,2,3]', 'not an event envelope { id, type, data }'],
    ['an envelope with a seq of its own', JSON.stringify({ id: 'has-seq', seq: 99, type: 'PostCreated', data: { id: 'p', title: 't' } }), 'not an event envelope { id, type, data }'],
    ['an id with a slash', JSON.stringify({ id: '../id', type: 'PostCreated', data: { id: 'p', title: 't' } }), 'invalid event id'],
    ['an unknown type', JSON.stringify({ id: 'unknown-type', type: 'PostDeleted', data: { id: 'p' } }), 'not a valid event'],
    ['a known type with bad data', JSON.stringify({ id: 'bad-data', type: 'CommentCreated', data: { id: 'c', postId: 'p', content: 'x', status: 'approved' } }), 'not a valid event'],
  ])('when the stream gets %s, then it is served as a DeadLetter event at its seq, counted and logged, and publishing goes on', async (_case, body, reason) => {
    const bus = await openBus();
    const before = await request(bus.app).post('/events').send(postCreated('before'));

    await inject(bus.store, body);
    const after = await request(bus.app).post('/events').send(postCreated('after'));

    expect(after.status).toBe(201);
    expect(after.body.seq).toBe(3);
    const events = await request(bus.app).get('/events');
    expect(events.status).toBe(200);
    expect(events.body).toEqual([before.body, { id: 'dead-letter-2', seq: 2, type: 'DeadLetter', data: { reason } }, after.body]);
    expect(await bus.deadLetterCount()).toBe(1);
    expect(bus.lines.filter((line) => line.level === 'error')).toEqual([expect.objectContaining({ seq: 2, reason, msg: expect.stringContaining('not a valid event') })]);
  });

  it('when a dead letter is read again, by the follower, a page and a long poll, then it is logged and counted once and kept in the id index database', async () => {
    const bus = await openBus();
    await inject(bus.store, 'garbage one');

    const published = await request(bus.app).post('/events').send(postCreated('next'));
    await request(bus.app).get('/events?after=0&limit=1');
    await request(bus.app).get('/events?after=0&wait=100');
    await bus.close();

    expect(published.body.seq).toBe(2);
    expect(await bus.deadLetterCount()).toBe(1);
    expect(bus.lines.filter((line) => line.level === 'error')).toHaveLength(1);
    const db = openDatabase(path.join(bus.dataDir, indexFile), { durability: 'normal' });
    try {
      expect(db.prepare('SELECT seq, reason, body, bytes FROM dead_letters').all()).toEqual([{ seq: 1, reason: 'not JSON', body: 'garbage one', bytes: 11 }]);
    } finally {
      db.close();
    }
  });

  it('when a replica builds its index from a stream holding a dead letter older than its cache, then it starts, pages past it and never indexes its id', async () => {
    const writer = await openBus();
    // Shaped like a message the bus writes, but its title is empty.
    await inject(writer.store, '{"id":"looks-right","type":"PostCreated","data":{"id":"p","title":""}}');
    const events = Array.from({ length: 30 }, (_, n) => ({ ...postCreated(`history ${n}`), id: `history-${n}` }));
    expect((await request(writer.app).post('/events').send(events)).status).toBe(201);
    await writer.close();

    const replica = await openBus({ stream: writer.stream, cache: { maxEvents: 4, maxBytes: 1024 * 1024 } });
    const head = replica.store.index.visibleSeq;
    const page = await request(replica.app).get('/events?after=0&limit=3');
    const sameIdAgain = await request(replica.app).post('/events').send({ id: 'looks-right', type: 'PostCreated', data: { id: 'p', title: 'a real one' } });

    expect(page.body.map((event: { seq: number; type: string }) => [event.seq, event.type])).toEqual([
      [1, 'DeadLetter'],
      [2, 'PostCreated'],
      [3, 'PostCreated'],
    ]);
    expect(head).toBe(31);
    // The id was never an event's: the first real event under it is stored, not refused.
    expect(sameIdAgain.status).toBe(201);
    expect(sameIdAgain.body).toMatchObject({ id: 'looks-right', seq: 32 });
  });

  it('when a dead letter is among the events delivered to a subscriber, then the subscriber gets the DeadLetter event in its place and every event after it', async () => {
    const bus = await openBus();
    const received: DeliveryEnvelope[] = [];
    const subscriber = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const delivered = JSON.parse(body) as DeliveryEnvelope | DeliveryEnvelope[];
        received.push(...(Array.isArray(delivered) ? delivered : [delivered]));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'applied', lastSeq: received.at(-1)!.seq, maxBatch: 100 }));
      });
    });
    await new Promise<void>((resolve) => subscriber.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => (subscriber.closeAllConnections(), subscriber.close(resolve))));
    const delivery = new JetStreamDelivery({
      store: bus.store,
      subscribers: [{ name: 'probe', url: `http://127.0.0.1:${(subscriber.address() as AddressInfo).port}/events` }],
      logger: createLogger('event-bus-test', 'silent'),
      metrics: createMetricsRegistry('event-bus'),
      timeoutMs: 2_000,
      retryMaxDelayMs: 200,
    });
    await delivery.start();
    cleanups.push(() => delivery.stop());

    await request(bus.app).post('/events').send(postCreated('first'));
    await inject(bus.store, '{"id":"cut-short","type":"PostCreated"');
    await request(bus.app).post('/events').send(postCreated('third'));

    await waitFor(() => (received.some((event) => event.seq === 3) ? true : undefined), { timeoutMs: 10_000, what: 'the event after the dead letter to be delivered' });
    expect(received.map((event) => [event.seq, event.type])).toEqual([
      [1, 'PostCreated'],
      [2, 'DeadLetter'],
      [3, 'PostCreated'],
    ]);
  });

  it('when the stream was created without deny_delete and deny_purge, then the bus turns both on, and its messages can no longer be deleted or purged', async () => {
    const first = await openBus();
    const stream = `UNGUARDED_${process.pid}`;
    await first.store.jsm.streams.add({ name: stream, subjects: [`${stream}.events`] });
    const old = await first.store.jsm.streams.info(stream);

    const bus = await openBus({ stream });
    await request(bus.app).post('/events').send(postCreated('guarded'));
    const info = await bus.store.jsm.streams.info(stream);

    expect(old.config).toMatchObject({ deny_delete: false, deny_purge: false });
    expect(info.config).toMatchObject({ deny_delete: true, deny_purge: true });
    await expect(bus.store.jsm.streams.deleteMessage(stream, 1)).rejects.toThrow();
    await expect(bus.store.jsm.streams.purge(stream)).rejects.toThrow();
    expect((await bus.store.jsm.streams.info(stream)).state.messages).toBe(1);
    const created = await bus.store.jsm.streams.info(first.stream);
    expect(created.config).toMatchObject({ deny_delete: true, deny_purge: true });
  });
});
