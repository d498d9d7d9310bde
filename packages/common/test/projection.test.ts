import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, startEventBus, testBusSecret, waitFor, type ServiceProcess } from '@blog/testing';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  catchUpUntilReady,
  createBusClient,
  createLogger,
  createMetricsRegistry,
  createServiceApp,
  derivedEventId,
  Lifecycle,
  LogReplacedError,
  Projection,
  receiveEvents,
  type BusClient,
  type EventEnvelope,
  type ProjectionSpec,
  batchLimits,
} from '../src/index.js';

/** The simplest real projection: the titles of every post, in the order they were applied. */
interface Titles {
  add(title: string): void;
  all(): string[];
}
const titles: ProjectionSpec<Titles> = {
  open: (db) => {
    db.exec('CREATE TABLE IF NOT EXISTS titles (position INTEGER PRIMARY KEY, title TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO titles (title) VALUES (?)');
    const select = db.prepare('SELECT title FROM titles ORDER BY position');
    return { add: (title) => void insert.run(title), all: () => (select.all() as Array<{ title: string }>).map((row) => row.title) };
  },
  apply: (state, event) => {
    if (event.type !== 'PostCreated') return false;
    state.add(event.data.title);
    return true;
  },
};

const logger = createLogger('projection-test', 'silent');

describe('Projection', () => {
  let bus: ServiceProcess & { destroy: () => Promise<void> };
  let client: BusClient;
  let dir: Awaited<ReturnType<typeof makeTempDir>>;

  beforeAll(async () => {
    bus = await startEventBus();
    client = createBusClient({ baseUrl: bus.url, timeoutMs: 2_000, secret: testBusSecret });
  });
  afterAll(() => bus.destroy());
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(() => dir.remove());

  const open = (options: { busClient?: BusClient } = {}) =>
    Projection.open({ spec: titles, dataDir: dir.path, bus: options.busClient ?? client, logger, metrics: createMetricsRegistry('test') });
  const publishPost = (title: string) => client.publish({ type: 'PostCreated', data: { id: `p-${Math.random().toString(36).slice(2)}`, title } });

  it('when it catches up, then it applies everything after its last sequence, once', async () => {
    const projection = await open();
    await projection.catchUp();
    const start = projection.lastSeq;
    await publishPost('a');
    await publishPost('b');

    await projection.catchUp();
    await projection.catchUp();

    expect(projection.state.all().slice(-2)).toEqual(['a', 'b']);
    expect(projection.lastSeq).toBe(start + 2);
    await projection.close();
  });

  it('when it was killed, then the database restores the state and nothing is applied twice', async () => {
    const first = await open();
    await first.catchUp();
    const stored = await publishPost('journaled');
    await first.deliver(stored);
    const before = first.state.all();
    // No close(): like kill -9, only what was committed survives. The connection is left to the test's exit.

    const second = await open({ busClient: createBusClient({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 500 }) });

    expect(second.state.all()).toEqual(before);
    expect(second.lastSeq).toBe(stored.seq);
    expect(await second.deliver(stored)).toEqual({ status: 'duplicate', lastSeq: stored.seq, maxBatch: batchLimits.maxEvents });
    await second.close();
  });

  it('when a reaction cannot be published (bus unreachable) and the service is killed, then the next start publishes it, once', async () => {
    // Each post makes this projection announce it: the reaction's id is derived from the post's event.
    const announcing: ProjectionSpec<Titles> = {
      ...titles,
      react: (_state, event) =>
        event.type === 'PostCreated' ? [{ id: derivedEventId(event.id, 'announced'), type: 'PostCreated', data: { id: `${event.data.id}-announced`, title: `announced: ${event.data.title}` } }] : [],
    };
    const openAnnouncing = (busClient: BusClient) => Projection.open({ spec: announcing, dataDir: dir.path, bus: busClient, logger, metrics: createMetricsRegistry('test') });
    const stored = await publishPost('to announce');
    const cutOff = await openAnnouncing(createBusClient({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 200 }));

    // The delivery is acknowledged: the reaction is on disk with it, not yet on the bus.
    expect((await cutOff.deliver({ ...stored, seq: cutOff.lastSeq + 1 })).status).toBe('applied');
    // No close(): killed.
    const restarted = await openAnnouncing(client);
    const announced = async () => (await client.readEvents(0, 10_000)).events.filter((event) => (event.data as { title: string }).title === 'announced: to announce');

    await waitFor(async () => ((await announced()).length > 0 ? true : undefined), { what: 'the reaction to reach the bus' });
    await restarted.close();
    await openAnnouncing(client).then((again) => again.close());
    expect(await announced()).toHaveLength(1);
  });

  it('when closed and opened again, then the state and the position are the same', async () => {
    const projection = await open();
    await projection.catchUp();
    await projection.deliver(await publishPost('kept'));
    const closed = { titles: projection.state.all(), lastSeq: projection.lastSeq, logId: projection.logId };
    await projection.close();

    const reopened = await open();

    expect(reopened.state.all()).toEqual(closed.titles);
    expect(reopened.lastSeq).toBe(closed.lastSeq);
    expect(closed.logId).toEqual(expect.any(String));
    expect(reopened.logId).toBe(closed.logId);
    await reopened.close();
  });

  it('when storing a batch fails part way, then none of the batch is kept and the delivery gets a 503', async () => {
    // The storage fails while the second event of the batch is applied (as a full disk would).
    const failing: ProjectionSpec<Titles> = {
      ...titles,
      apply: (state, event) => {
        if (event.type === 'PostCreated' && event.data.title === 'the failing one') throw new Error('database or disk is full');
        return titles.apply(state, event);
      },
    };
    const projection = await Projection.open({ spec: failing, dataDir: dir.path, bus: client, logger, metrics: createMetricsRegistry('test') });
    await projection.catchUp();
    const start = { lastSeq: projection.lastSeq, titles: projection.state.all() };
    const batch = [await publishPost('before the failure'), await publishPost('the failing one')];

    const failed = projection.deliver(batch);

    await expect(failed).rejects.toMatchObject({ status: 503, code: 'state_store_failed' });
    expect(projection.lastSeq).toBe(start.lastSeq);
    expect(projection.state.all()).toEqual(start.titles);
    await projection.close();
  });

  it('when the disk is full, then the delivery gets 503, nothing is acknowledged after it, /healthz answers 503 and the failure is logged', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const capturing = createLogger('projection-test', 'warn', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const metrics = createMetricsRegistry('test');
    const lifecycle = new Lifecycle();
    const projection = await Projection.open({ spec: titles, dataDir: dir.path, bus: client, logger: capturing, metrics, lifecycle });
    await projection.catchUp();
    lifecycle.markReady();
    const app = createServiceApp({ logger: capturing, metrics, lifecycle }, () => {}, receiveEvents({ projection, lifecycle }));
    const batch = await client.publishAll(Array.from({ length: 40 }, (_, n) => ({ type: 'PostCreated' as const, data: { id: `p-full-${n}`, title: 'x'.repeat(200) } })));
    // SQLite's own limit on the file's size: its writes fail with SQLITE_FULL, as on a full disk.
    const { page_count: pages } = projection.db.prepare('PRAGMA page_count').get() as { page_count: number };
    projection.db.exec(`PRAGMA max_page_count = ${pages}`);

    const refused = await request(app).post('/events').send(batch);
    // Room again: the process still acknowledges nothing, it must be restarted.
    projection.db.exec('PRAGMA max_page_count = 1073741823');
    const after = await request(app).post('/events').send(batch[0]);
    const health = await request(app).get('/healthz');

    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ error: { code: 'state_store_failed', message: expect.stringContaining('database or disk is full') } });
    expect(after.status).toBe(503);
    expect(after.body).toMatchObject({ error: { code: 'state_store_failed' } });
    expect(health.status).toBe(503);
    expect(health.body).toEqual({ status: 'failed', state: 'failed' });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringContaining('database or disk is full') }));
    expect(projection.lastSeq).toBeLessThan(batch[0]!.seq);
    await projection.close();
  });

  it('when a thousand catch-ups are asked for at once, then one pass over the bus answers them all', async () => {
    await publishPost('to catch up with');
    let reads = 0;
    const counting: BusClient = { ...client, readEvents: (...args) => ((reads += 1), client.readEvents(...args)) };
    const projection = await open({ busClient: counting });

    await Promise.all(Array.from({ length: 1_000 }, () => projection.catchUp()));

    expect(reads).toBe(1);
    expect(projection.state.all()).toContain('to catch up with');
    await projection.close();
  });

  it('when more work waits for the state than it may, then the rest is refused with 503 state_busy', async () => {
    const projection = await Projection.open({ spec: titles, dataDir: dir.path, bus: client, logger, metrics: createMetricsRegistry('test'), maxWaiting: 2 });
    const stored = await publishPost('waited for');

    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => projection.deliver(stored)));

    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect((outcomes[3] as PromiseRejectedResult).reason).toMatchObject({ status: 503, code: 'state_busy' });
    await projection.close();
  });

  it('when the bus serves another log, then nothing is applied and the error says how to rebuild', async () => {
    const projection = await open();
    await projection.catchUp();
    await projection.deliver(await publishPost('from the first log'));
    const applied = { lastSeq: projection.lastSeq, titles: projection.state.all() };
    const replacement = await startEventBus();
    const replacementClient = createBusClient({ baseUrl: replacement.url, timeoutMs: 2_000, secret: testBusSecret });
    const onNewLog = await replacementClient.publish({ type: 'PostCreated', data: { id: 'p-new-log', title: 'seq 1 of another log' } });
    await projection.close();
    const pointedElsewhere = await open({ busClient: replacementClient });

    await expect(pointedElsewhere.catchUp()).rejects.toThrow(LogReplacedError);
    await expect(pointedElsewhere.deliver(onNewLog, { logId: 'another-log' })).rejects.toMatchObject({ status: 409, code: 'log_replaced' });
    expect(pointedElsewhere.lastSeq).toBe(applied.lastSeq);
    expect(pointedElsewhere.state.all()).toEqual(applied.titles);
    expect(pointedElsewhere.logReplaced!.message).toContain(path.join(dir.path, 'state.db'));
    await pointedElsewhere.close();
    await replacementClient.close();
    await replacement.destroy();
  });

  it('when DATA_DIR holds state in the old file format, then opening refuses and names the files', async () => {
    await writeFile(path.join(dir.path, 'snapshot.json'), '{"lastSeq":3,"state":[]}');

    await expect(open()).rejects.toThrow(path.join(dir.path, 'snapshot.json'));
  });

  it('when events arrive concurrently and out of order, then they are applied in log order exactly once', async () => {
    const projection = await open();
    await projection.catchUp();
    const events: EventEnvelope[] = [];
    for (let i = 0; i < 20; i += 1) events.push(await publishPost(`c${i}`));

    const shuffled = [...events, ...events].sort(() => Math.random() - 0.5);
    await Promise.all(shuffled.map((event) => projection.deliver(event)));

    expect(projection.state.all().slice(-20)).toEqual(events.map((event) => (event.data as { title: string }).title));
    await projection.close();
  });
});

describe('catchUpUntilReady', () => {
  it('when the bus comes up late, then the service becomes ready only after catching up', async () => {
    const dir = await makeTempDir();
    const bus = await startEventBus();
    const url = bus.url;
    await bus.kill();
    const projection = await Projection.open({ spec: titles, dataDir: dir.path, bus: createBusClient({ baseUrl: url, timeoutMs: 500, secret: testBusSecret }), logger, metrics: createMetricsRegistry('test') });
    const lifecycle = new Lifecycle();
    const stop = new AbortController();

    const done = catchUpUntilReady(projection, lifecycle, logger, stop.signal);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(lifecycle.isReady()).toBe(false);
    await bus.start();
    await done;

    expect(lifecycle.isReady()).toBe(true);
    await projection.close();
    await bus.destroy();
    await dir.remove();
  });

  it('when the bus serves another log, then the service stays unready with the reason, and alive', async () => {
    const dir = await makeTempDir();
    const first = await startEventBus();
    const second = await startEventBus();
    const open = (url: string) => Projection.open({ spec: titles, dataDir: dir.path, bus: createBusClient({ baseUrl: url, timeoutMs: 2_000, secret: testBusSecret }), logger, metrics: createMetricsRegistry('test') });
    const followedFirst = await open(first.url);
    await followedFirst.catchUp();
    await followedFirst.close();
    const projection = await open(second.url);
    const lifecycle = new Lifecycle();

    await catchUpUntilReady(projection, lifecycle, logger, new AbortController().signal);

    expect(lifecycle.state).toBe('blocked');
    expect(lifecycle.isAlive()).toBe(true);
    expect(lifecycle.reason).toMatch(/delete .*state\.db/);
    await projection.close();
    await Promise.all([first.destroy(), second.destroy()]);
    await dir.remove();
  });
});
