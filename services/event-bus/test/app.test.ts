import path from 'node:path';
import { batchLimits, createLogger, createMetricsRegistry, headSeqHeader, Lifecycle, limits, logIdHeader } from '@blog/common';
import { makeTempDir, NatsServer, natsServerAvailable } from '@blog/testing';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEventBusApp } from '../src/app.js';
import { defaultTailCacheLimits } from '../src/event-index.js';
import { EventLog } from '../src/event-log.js';
import type { EventStore } from '../src/event-store.js';
import { JetStreamStore } from '../src/jetstream-store.js';

const logger = createLogger('event-bus-test', 'silent');

/** Both stores pass the same suite: the file log, and a stream on a real JetStream server. */
let nats: NatsServer | undefined;
const stores: Array<[string, (dataDir: string) => Promise<EventStore>]> = [['the file log', (dataDir) => EventLog.open(dataDir, logger)]];
if (natsServerAvailable() || process.env.CI === 'true') {
  // The stream is named after the test's data dir: "restarting on the same data" reopens it.
  stores.push(['JetStream', (dataDir) => JetStreamStore.open({ servers: [nats!.url], stream: `T_${path.basename(dataDir)}`, replicas: 1, timeoutMs: 5_000, dataDir, logger })]);
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(() => nats?.destroy());
}

const postCreated = (title: string, id = `post-${Math.random().toString(36).slice(2)}`) => ({ type: 'PostCreated', data: { id, title } });

describe.each(stores)('event bus API on %s', (_name, openStore) => {
  async function createBus(dataDir: string) {
    const log = await openStore(dataDir);
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const app = createEventBusApp({ logger, metrics: createMetricsRegistry('event-bus'), lifecycle, store: log });
    return { app, log, lifecycle };
  }

  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let bus: Awaited<ReturnType<typeof createBus>>;
  beforeEach(async () => {
    dir = await makeTempDir();
    bus = await createBus(dir.path);
  });
  afterEach(async () => {
    await bus.log.close();
    await dir.remove();
  });

  describe('POST /events', () => {
    it('when a valid classic {type, data} event arrives, then it is stored with an id and the next sequence number', async () => {
      const event = postCreated('first');

      const response = await request(bus.app).post('/events').send(event);

      expect(response.status).toBe(201);
      expect(response.body).toEqual({ ...event, id: expect.any(String), seq: 1 });
      const events = await request(bus.app).get('/events');
      expect(events.body).toEqual([response.body]);
    });

    it('when the same event id is published twice, then it is stored once and the retry gets the stored event with 200', async () => {
      const event = { ...postCreated('retried'), id: 'producer-chosen-id' };

      const first = await request(bus.app).post('/events').send(event);
      const retry = await request(bus.app).post('/events').send(event);

      expect(first.status).toBe(201);
      expect(retry.status).toBe(200);
      expect(retry.body).toEqual(first.body);
      expect((await request(bus.app).get('/events')).body).toHaveLength(1);
    });

    it('when an id is reused for a different event, then it is refused with 409 and the answer carries the stored event', async () => {
      const stored = await request(bus.app).post('/events').send({ ...postCreated('one', 'p1'), id: 'same-id' });

      const response = await request(bus.app).post('/events').send({ ...postCreated('two', 'p1'), id: 'same-id' });

      expect(response.status).toBe(409);
      expect(response.body).toEqual({ error: { code: 'event_id_conflict', message: expect.stringContaining('same-id'), details: { id: 'same-id', stored: stored.body } } });
      expect(stored.body).toMatchObject({ id: 'same-id', data: { title: 'one' } });
    });

    it.each([
      ['an unknown type', { type: 'PostDeleted', data: { id: 'p1' } }],
      ['no data', { type: 'PostCreated' }],
      ['an empty title', { type: 'PostCreated', data: { id: 'p1', title: '' } }],
      ['a title over the limit', { type: 'PostCreated', data: { id: 'p1', title: 'x'.repeat(limits.titleMaxLength + 1) } }],
      ['a comment with a bad status', { type: 'CommentCreated', data: { id: 'c1', postId: 'p1', content: 'hi', status: 'approved' } }],
      ['an id with a slash', { type: 'PostCreated', data: { id: '../p1', title: 't' } }],
      ['an extra field', { type: 'PostCreated', data: { id: 'p1', title: 't', admin: true } }],
      ['an array with an invalid event', [{ type: 'PostCreated', data: { id: 'p1', title: 't' } }, { type: 'PostCreated', data: { id: 'p2' } }]],
      ['an empty array', []],
    ])('when the event has %s, then it is refused with 400 and not stored', async (_case, body) => {
      const response = await request(bus.app).post('/events').send(body);

      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: { code: 'invalid_request', message: expect.any(String) } });
      expect((await request(bus.app).get('/events')).body).toEqual([]);
    });

    it('when an array of events arrives, then they are stored in that order with one answer, and a retry of it stores nothing new', async () => {
      const batch = [
        { ...postCreated('first of batch', 'b1'), id: 'batch-1' },
        { ...postCreated('second of batch', 'b2'), id: 'batch-2' },
      ];

      const response = await request(bus.app).post('/events').send(batch);
      const retry = await request(bus.app).post('/events').send(batch);

      expect(response.status).toBe(201);
      expect(response.body).toEqual([
        { ...batch[0], seq: 1 },
        { ...batch[1], seq: 2 },
      ]);
      expect(retry.status).toBe(200);
      expect(retry.body).toEqual(response.body);
      expect((await request(bus.app).get('/events')).body).toEqual(response.body);
    });

    it('when the body is malformed JSON, then 400 malformed_json', async () => {
      const response = await request(bus.app).post('/events').set('content-type', 'application/json').send('{"type":');

      expect(response.status).toBe(400);
      expect(response.body).toEqual({ error: { code: 'malformed_json', message: expect.any(String) } });
    });

    it('when the body is over the size limit, then 413', async () => {
      const response = await request(bus.app).post('/events').send({ type: 'PostCreated', data: { id: 'p', title: 'x'.repeat(batchLimits.bodyMaxBytes) } });

      expect(response.status).toBe(413);
      expect(response.body).toEqual({ error: { code: 'payload_too_large', message: expect.any(String) } });
    });
  });

  describe('GET /events', () => {
    it('when paging with after and limit, then it returns that slice in order with the head sequence', async () => {
      for (let i = 1; i <= 5; i += 1) await request(bus.app).post('/events').send(postCreated(`post ${i}`));

      const page = await request(bus.app).get('/events?after=2&limit=2');

      expect(page.status).toBe(200);
      expect(page.headers['x-head-seq']).toBe('5');
      expect(page.body.map((event: { seq: number; data: { title: string } }) => [event.seq, event.data.title])).toEqual([
        [3, 'post 3'],
        [4, 'post 4'],
      ]);
      expect((await request(bus.app).get('/events?after=5')).body).toEqual([]);
    });

    it('when waiting (long poll) for an event after the last one, then the answer comes as soon as one is stored', async () => {
      await request(bus.app).post('/events').send(postCreated('first'));

      const polling = request(bus.app).get('/events?after=1&wait=5000');
      await new Promise((resolve) => setTimeout(resolve, 200));
      await request(bus.app).post('/events').send(postCreated('second'));
      const page = await polling;

      expect(page.status).toBe(200);
      expect(page.body.map((event: { seq: number }) => event.seq)).toEqual([2]);
    });

    it('when nothing comes within the wait, then the long poll answers an empty page', async () => {
      const started = Date.now();
      const page = await request(bus.app).get('/events?after=0&wait=300');

      expect(page.body).toEqual([]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    });

    it.each(['after=-1', 'after=abc', 'limit=0', 'limit=100000', 'after=1.5', 'wait=-1', 'wait=60000'])('when the query is %s, then 400', async (query) => {
      const response = await request(bus.app).get(`/events?${query}`);

      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('invalid_request');
    });
  });

  it('when the bus is restarted on the same data, then every event is still there in order', async () => {
    const stored = [];
    for (let i = 0; i < 3; i += 1) stored.push((await request(bus.app).post('/events').send(postCreated(`kept ${i}`))).body);
    await bus.log.close();

    bus = await createBus(dir.path);

    expect((await request(bus.app).get('/events')).body).toEqual(stored);
    const next = await request(bus.app).post('/events').send(postCreated('after restart'));
    expect(next.body.seq).toBe(4);
  });

  it('when the bus is restarted on the same data, then it names the same log (x-log-id), and a bus on new data names another', async () => {
    const published = await request(bus.app).post('/events').send(postCreated('named'));
    const logId = published.headers[logIdHeader];
    expect(logId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await request(bus.app).get('/events')).headers[logIdHeader]).toBe(logId);
    await bus.log.close();

    bus = await createBus(dir.path);
    const otherDir = await makeTempDir();
    const other = await createBus(otherDir.path);

    try {
      expect((await request(bus.app).get('/events?after=0&limit=1')).headers[logIdHeader]).toBe(logId);
      expect((await request(bus.app).post('/events').send(postCreated('after restart'))).headers[logIdHeader]).toBe(logId);
      expect((await request(other.app).get('/events')).headers[logIdHeader]).toMatch(/^[0-9a-f-]{36}$/);
      expect((await request(other.app).get('/events')).headers[logIdHeader]).not.toBe(logId);
    } finally {
      await other.log.close();
      await otherDir.remove();
    }
  });

  describe('a log longer than the newest events kept in memory', () => {
    // Over the cache's count limit, so the oldest of them are only in the store.
    const total = defaultTailCacheLimits.maxEvents + 150;
    const eventId = (n: number) => `long-log-${n}`;
    const event = (n: number) => ({ ...postCreated(`long log ${n}`, `p${n}`), id: eventId(n) });

    beforeEach(async () => {
      for (let first = 1; first <= total; first += batchLimits.maxEvents) {
        const batch = Array.from({ length: Math.min(batchLimits.maxEvents, total - first + 1) }, (_, i) => event(first + i));
        expect((await request(bus.app).post('/events').send(batch)).status).toBe(201);
      }
    });

    it('when an id from the start of the log is published again, then the stored event is answered and nothing is appended', async () => {
      const retry = await request(bus.app).post('/events').send(event(1));
      const conflict = await request(bus.app).post('/events').send({ ...postCreated('another event', 'p1'), id: eventId(1) });

      expect(retry.status).toBe(200);
      expect(retry.body).toEqual({ ...event(1), seq: 1 });
      expect(conflict.status).toBe(409);
      expect((await request(bus.app).get('/events?after=0&limit=1')).headers[headSeqHeader]).toBe(String(total));
    });

    it('when paging from the start, then the pages come from the store in order, and the whole log is one answer', async () => {
      const first = await request(bus.app).get('/events?after=0&limit=100');
      const acrossTheCache = await request(bus.app).get(`/events?after=${total - defaultTailCacheLimits.maxEvents - 50}&limit=100`);
      const whole = await request(bus.app).get('/events');

      const seqs = (page: request.Response): number[] => (page.body as Array<{ seq: number }>).map((stored) => stored.seq);
      expect(first.body[0]).toEqual({ ...event(1), seq: 1 });
      expect(seqs(first)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      expect(seqs(acrossTheCache)).toEqual(Array.from({ length: 100 }, (_, i) => total - defaultTailCacheLimits.maxEvents - 49 + i));
      expect(seqs(whole)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(whole.body.at(-1)).toEqual({ ...event(total), seq: total });
    });
  });

  it('serves health, readiness and metrics', async () => {
    await request(bus.app).post('/events').send(postCreated('metric'));

    expect((await request(bus.app).get('/healthz')).body).toEqual({ status: 'ok', state: 'ready' });
    expect((await request(bus.app).get('/readyz')).status).toBe(200);
    const metrics = await request(bus.app).get('/metrics');
    expect(metrics.text).toContain('event_bus_events_published_total{type="PostCreated",service="event-bus"} 1');
    bus.lifecycle.markStopping();
    expect((await request(bus.app).get('/readyz')).status).toBe(503);
  });

  it('when a route does not exist, then 404 JSON', async () => {
    const response = await request(bus.app).delete('/events');

    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: { code: 'not_found', message: 'No route for DELETE /events' } });
  });
});

/** What only the JetStream store has: several replicas on one stream, a server that restarts, a stream that is replaced. */
describe.runIf(natsServerAvailable() || process.env.CI === 'true')('event bus on JetStream', () => {
  let server: NatsServer;
  const dirs: Array<{ path: string; remove: () => Promise<void> }> = [];
  const opened: JetStreamStore[] = [];

  beforeEach(async () => {
    server = await NatsServer.start();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
    await server.destroy();
    await Promise.all(dirs.splice(0).map((dir) => dir.remove()));
  });

  async function openReplica(stream: string, dataDir?: string, cache?: { maxEvents: number; maxBytes: number }) {
    if (!dataDir) {
      const dir = await makeTempDir();
      dirs.push(dir);
      dataDir = dir.path;
    }
    const store = await JetStreamStore.open({ servers: [server.url], stream, replicas: 1, timeoutMs: 5_000, dataDir, logger, ...(cache ? { cache } : {}) });
    opened.push(store);
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    return { store, dataDir, app: createEventBusApp({ logger, metrics: createMetricsRegistry('event-bus'), lifecycle, store }) };
  }

  async function closeReplica(store: JetStreamStore) {
    opened.splice(opened.indexOf(store), 1);
    await store.close();
  }

  it('when the JetStream server is killed and restarted, then every publish is confirmed and each replica follows what the other publishes', async () => {
    const a = await openReplica('RESTARTED');
    const b = await openReplica('RESTARTED');
    for (let n = 1; n <= 2; n += 1) expect((await request(a.app).post('/events').send(postCreated(`before ${n}`))).status).toBe(201);

    await server.kill();
    await server.start();

    // Sent while the replicas may still be reconnecting: each waits for its connection and is stored.
    const first = await request(a.app).post('/events').send(postCreated('first after the restart'));
    expect(first.status).toBe(201);
    // B's follower may still be starting again: a reader at B's head is answered from the stream.
    expect((await request(b.app).get('/events?after=2')).body).toEqual([first.body]);
    const after: number[] = [first.body.seq];
    for (let n = 2; n <= 10; n += 1) {
      const published = await request(n % 2 === 0 ? a.app : b.app).post('/events').send(postCreated(`after ${n}`));
      expect(published.status).toBe(201);
      after.push(published.body.seq);
    }
    expect(after).toEqual(Array.from({ length: 10 }, (_, i) => i + 3));
    // Long polls on A answered by what is published through B: A's follower is alive after the restart.
    const polling = request(a.app).get('/events?after=12&wait=4000');
    const fromB = await request(b.app).post('/events').send(postCreated('seen by A'));
    expect((await polling).body).toEqual([fromB.body]);
    for (const replica of [a, b]) expect((await request(replica.app).get('/events')).body.map((event: { seq: number }) => event.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
  });

  it('when the stream is deleted and created again, then the log id changes and the ids of the old stream are forgotten', async () => {
    const first = await openReplica('REPLACED');
    const original = await request(first.app).post('/events').send({ ...postCreated('in the old stream'), id: 'replaced-id' });
    const logId = original.headers[logIdHeader];
    await closeReplica(first.store);

    const reopened = await openReplica('REPLACED', first.dataDir);
    expect(reopened.store.logId).toBe(logId);
    await reopened.store.jsm.streams.delete('REPLACED');
    await closeReplica(reopened.store);
    const recreated = await openReplica('REPLACED', first.dataDir);

    const published = await request(recreated.app).post('/events').send({ ...postCreated('in the new stream'), id: 'replaced-id' });
    expect(recreated.store.logId).toMatch(/^[0-9a-f-]{36}$/);
    expect(recreated.store.logId).not.toBe(logId);
    expect(published.status).toBe(201);
    expect(published.headers[logIdHeader]).toBe(recreated.store.logId);
    expect(published.body).toMatchObject({ id: 'replaced-id', seq: 1, data: { title: 'in the new stream' } });
  });

  it('when an id was stored before the duplicate window, then the id index answers it: the stored event, or 409 for another event', async () => {
    const writer = await openReplica('OLD_IDS');
    // As if published long ago: no message id, so JetStream's duplicate window does not know it.
    const old = { id: 'published-long-ago', type: 'PostCreated', data: { id: 'p-old', title: 'old' } };
    await writer.store.js.publish(writer.store.subject, JSON.stringify(old));
    for (let n = 1; n <= 5; n += 1) await request(writer.app).post('/events').send(postCreated(`newer ${n}`));
    await closeReplica(writer.store);

    // Reopened on its data (the index resumes) and on a new data dir (the index is rebuilt from the stream).
    for (const replica of [await openReplica('OLD_IDS', writer.dataDir), await openReplica('OLD_IDS')]) {
      const retry = await request(replica.app).post('/events').send(old);
      const conflict = await request(replica.app).post('/events').send({ ...old, data: { id: 'p-old', title: 'changed' } });

      expect(retry.status).toBe(200);
      expect(retry.body).toEqual({ ...old, seq: 1 });
      expect(conflict.status).toBe(409);
    }
    expect(writer.store.index.visibleSeq).toBe(6);
  });

  it('when pages are read beyond the cache with a byte limit, then they follow each other without a gap or a repeat', async () => {
    const { store, app } = await openReplica('PAGES', undefined, { maxEvents: 4, maxBytes: 1024 * 1024 });
    const events = Array.from({ length: 60 }, (_, n) => ({ ...postCreated(`page ${n} ${'x'.repeat((n * 37) % 180)}`, `p${n}`), id: `page-${n}` }));
    expect((await request(app).post('/events').send(events)).status).toBe(201);

    const seen: number[] = [];
    for (let after = 0; after < 60; ) {
      const page = await store.read(after, 25, 1_500);
      expect(page.length).toBeGreaterThan(0);
      expect(page.reduce((bytes, event) => bytes + event.json.length + 1, 0) <= 1_500 || page.length === 1).toBe(true);
      seen.push(...page.map((event) => event.seq));
      after = page.at(-1)!.seq;
    }
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(JSON.parse((await store.read(9, 1))[0]!.json)).toEqual({ ...events[9], seq: 10 });
  });
});
