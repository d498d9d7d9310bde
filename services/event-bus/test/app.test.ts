import path from 'node:path';
import { batchLimits, createLogger, createMetricsRegistry, Lifecycle, limits } from '@blog/common';
import { makeTempDir, NatsServer, natsServerAvailable } from '@blog/testing';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEventBusApp } from '../src/app.js';
import { EventLog } from '../src/event-log.js';
import type { EventStore } from '../src/event-store.js';
import { JetStreamStore } from '../src/jetstream-store.js';

const logger = createLogger('event-bus-test', 'silent');

/** Both stores pass the same suite: the file log, and a stream on a real JetStream server. */
let nats: NatsServer | undefined;
const stores: Array<[string, (dataDir: string) => Promise<EventStore>]> = [['the file log', (dataDir) => EventLog.open(dataDir, logger)]];
if (natsServerAvailable() || process.env.CI === 'true') {
  // The stream is named after the test's data dir: "restarting on the same data" reopens it.
  stores.push(['JetStream', (dataDir) => JetStreamStore.open({ servers: [nats!.url], stream: `T_${path.basename(dataDir)}`, replicas: 1, timeoutMs: 5_000, logger })]);
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

    it('when an id is reused for a different event, then it is refused with 409', async () => {
      await request(bus.app).post('/events').send({ ...postCreated('one', 'p1'), id: 'same-id' });

      const response = await request(bus.app).post('/events').send({ ...postCreated('two', 'p1'), id: 'same-id' });

      expect(response.status).toBe(409);
      expect(response.body).toEqual({ error: { code: 'event_id_conflict', message: expect.stringContaining('same-id') } });
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
