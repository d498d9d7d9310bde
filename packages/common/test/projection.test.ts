import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, startEventBus, testBusSecret, waitFor, type ServiceProcess } from '@blog/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  catchUpUntilReady,
  createBusClient,
  createLogger,
  createMetricsRegistry,
  derivedEventId,
  Lifecycle,
  Projection,
  type BusClient,
  type EventEnvelope,
  type ProjectionSpec,
  batchLimits,
} from '../src/index.js';

/** The simplest real projection: the titles of every post, in the order they were applied. */
const titles: ProjectionSpec<string[]> = {
  initialState: () => [],
  apply: (state, event) => {
    if (event.type !== 'PostCreated') return false;
    state.push(event.data.title);
    return true;
  },
  toSnapshot: (state) => state,
  fromSnapshot: (snapshot) => [...(snapshot as string[])],
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

  const open = (options: { snapshotEvery?: number; busClient?: BusClient } = {}) =>
    Projection.open({ spec: titles, dataDir: dir.path, bus: options.busClient ?? client, logger, metrics: createMetricsRegistry('test'), ...options });
  const publishPost = (title: string) => client.publish({ type: 'PostCreated', data: { id: `p-${Math.random().toString(36).slice(2)}`, title } });

  it('when it catches up, then it applies everything after its last sequence, once', async () => {
    const projection = await open();
    await projection.catchUp();
    const start = projection.lastSeq;
    await publishPost('a');
    await publishPost('b');

    await projection.catchUp();
    await projection.catchUp();

    expect(projection.state.slice(-2)).toEqual(['a', 'b']);
    expect(projection.lastSeq).toBe(start + 2);
    await projection.close();
  });

  it('when it was killed without a snapshot, then the journal restores the state and nothing is applied twice', async () => {
    const first = await open();
    await first.catchUp();
    const stored = await publishPost('journaled');
    await first.deliver(stored);
    const before = [...first.state];
    // No close(): like kill -9, only what is on disk survives. The file handle is left to the test's exit.

    const second = await open({ busClient: createBusClient({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 500 }) });

    expect(second.state).toEqual(before);
    expect(second.lastSeq).toBe(stored.seq);
    expect(await second.deliver(stored)).toEqual({ status: 'duplicate', lastSeq: stored.seq, maxBatch: batchLimits.maxEvents });
    await second.close();
  });

  it('when a reaction cannot be published (bus unreachable) and the service is killed, then the next start publishes it, once', async () => {
    // Each post makes this projection announce it: the reaction's id is derived from the post's event.
    const announcing: ProjectionSpec<string[]> = {
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

  it('when closed, then the next start reads one snapshot and an empty journal', async () => {
    const projection = await open();
    await projection.catchUp();
    await projection.deliver(await publishPost('snap'));
    await projection.close();

    const snapshot = JSON.parse(await readFile(path.join(dir.path, 'snapshot.json'), 'utf8')) as { lastSeq: number; state: string[] };
    expect(snapshot).toEqual({ lastSeq: projection.lastSeq, state: projection.state, outbox: [] });
    expect(await readFile(path.join(dir.path, 'journal.log'), 'utf8')).toBe('');
    const reopened = await open();
    expect(reopened.state).toEqual(projection.state);
    await reopened.close();
  });

  it('when the journal grows past snapshotEvery, then it is folded into a snapshot', async () => {
    const projection = await open({ snapshotEvery: 3 });
    await projection.catchUp();
    for (const title of ['s1', 's2', 's3', 's4']) await projection.deliver(await publishPost(title));

    const journal = await readFile(path.join(dir.path, 'journal.log'), 'utf8');
    expect(journal.trim().split('\n').length).toBeLessThan(3);
    await projection.close();
    const reopened = await open();
    expect(reopened.state.slice(-4)).toEqual(['s1', 's2', 's3', 's4']);
    await reopened.close();
  });

  it('when the journal ends in a torn record, then the state loads up to it and catch-up fills the rest', async () => {
    const projection = await open();
    await projection.catchUp();
    await projection.deliver(await publishPost('intact'));
    await appendFile(path.join(dir.path, 'journal.log'), '1234abcd {"type":"PostCr');

    const reopened = await open();
    await reopened.catchUp();

    expect(reopened.state).toEqual(projection.state);
    await reopened.close();
  });

  it('when events arrive concurrently and out of order, then they are applied in log order exactly once', async () => {
    const projection = await open();
    await projection.catchUp();
    const events: EventEnvelope[] = [];
    for (let i = 0; i < 20; i += 1) events.push(await publishPost(`c${i}`));

    const shuffled = [...events, ...events].sort(() => Math.random() - 0.5);
    await Promise.all(shuffled.map((event) => projection.deliver(event)));

    expect(projection.state.slice(-20)).toEqual(events.map((event) => (event.data as { title: string }).title));
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
});
