import { makeTempDir, metricValue, startEventBus, testBusSecret, waitFor, type ServiceProcess } from '@blog/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createBusClient,
  createLogger,
  createMetricsRegistry,
  derivedEventId,
  limits,
  Projection,
  type BusClient,
  type EventEnvelope,
  type ProjectionSpec,
} from '../src/index.js';

/**
 * A projection that announces every post with a reaction (a PostCreated whose id is derived from
 * the post's event) and keeps the titles it has seen. How it words an announcement is its "rule":
 * a new rule on a rebuilt state words an old post differently under the same derived id.
 */
interface Titles {
  add(title: string): void;
  all(): string[];
}
const announcing = (word: (title: string) => string): ProjectionSpec<Titles> => ({
  open: (db) => {
    db.exec('CREATE TABLE IF NOT EXISTS titles (position INTEGER PRIMARY KEY, title TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO titles (title) VALUES (?)');
    const select = db.prepare('SELECT title FROM titles ORDER BY position');
    return { add: (title) => void insert.run(title), all: () => (select.all() as Array<{ title: string }>).map((row) => row.title) };
  },
  react: (_state, event) =>
    event.type === 'PostCreated' && !event.data.id.endsWith('-announced')
      ? [{ id: derivedEventId(event.id, 'announced'), type: 'PostCreated', data: { id: `${event.data.id}-announced`, title: word(event.data.title) } }]
      : [],
  apply: (state, event) => {
    if (event.type !== 'PostCreated') return false;
    state.add(event.data.title);
    return true;
  },
});
const rules = {
  /** What the first instance said. */
  before: (title: string) => `announced: ${title}`,
  /** The rule a rebuilt instance starts with: it words "apple" posts differently. */
  after: (title: string) => (title.includes('apple') ? `withdrawn: ${title}` : `announced: ${title}`),
  /** Announces "poison" posts with a title over the limit: the bus refuses it with 400. */
  poisoned: (title: string) => (title.includes('poison') ? 'x'.repeat(limits.titleMaxLength + 1) : `announced: ${title}`),
};

describe('Outbox', () => {
  let bus: ServiceProcess & { destroy: () => Promise<void> };
  let client: BusClient;
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let logLines: Array<Record<string, unknown>>;
  const opened: Array<Projection<Titles>> = [];

  beforeAll(async () => {
    bus = await startEventBus();
    client = createBusClient({ baseUrl: bus.url, timeoutMs: 2_000, secret: testBusSecret });
  });
  afterAll(async () => {
    await client.close();
    await bus.destroy();
  });
  beforeEach(async () => {
    dir = await makeTempDir();
    logLines = [];
  });
  afterEach(async () => {
    for (const projection of opened.splice(0)) await projection.close();
    await dir.remove();
  });

  async function open(word: (title: string) => string, { dataDir = dir.path, busClient = client, outboxStallAfterMs }: { dataDir?: string; busClient?: BusClient; outboxStallAfterMs?: number } = {}) {
    const logger = createLogger('outbox-test', 'warn', { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
    const metrics = createMetricsRegistry('test');
    const projection = await Projection.open({ spec: announcing(word), dataDir, bus: busClient, logger, metrics, ...(outboxStallAfterMs === undefined ? {} : { outboxStallAfterMs }) });
    opened.push(projection);
    return { projection, metrics };
  }
  const post = (title: string): Promise<EventEnvelope> => client.publish({ type: 'PostCreated', data: { id: `p-${Math.random().toString(36).slice(2)}`, title } });
  const logged = async () => (await client.readEvents(0, 10_000)).events;
  const announcementsOf = async (event: EventEnvelope) => (await logged()).filter((stored) => stored.id === derivedEventId(event.id, 'announced'));

  it('when the log already holds another reaction under a derived id (409), then the logged one is adopted and the reactions after it are published', async () => {
    // The first instance announces three posts under the old rule.
    const first = await open(rules.before);
    await first.projection.catchUp();
    const posts = [await post('plain'), await post('apple pie'), await post('cherry')];
    await first.projection.catchUp();
    await waitFor(async () => ((await metricValue(first.metrics, 'projection_outbox_pending')) === 0 ? true : undefined), { what: 'the first announcements' });
    await first.projection.close();
    const logBefore = await logged();

    // Rebuilt from the log on an empty directory, with the new rule: "apple pie" is worded otherwise, under the same id.
    const freshDir = await makeTempDir();
    const rebuilt = await open(rules.after, { dataDir: freshDir.path });
    await rebuilt.projection.catchUp();
    const later = await post('later');
    await rebuilt.projection.catchUp();

    // The one after the refused reaction is published: nothing is blocked.
    const [announcedLater] = await waitFor(async () => ((await announcementsOf(later)).length > 0 ? announcementsOf(later) : undefined), { what: 'the later announcement' });
    expect(announcedLater).toMatchObject({ data: { title: 'announced: later' } });
    await waitFor(async () => ((await metricValue(rebuilt.metrics, 'projection_outbox_pending')) === 0 ? true : undefined), { what: 'the outbox to drain' });
    // The logged wording stands, on the bus and in the rebuilt state.
    expect(await announcementsOf(posts[1]!)).toEqual([expect.objectContaining({ data: expect.objectContaining({ title: 'announced: apple pie' }) })]);
    expect((await logged()).slice(0, logBefore.length)).toEqual(logBefore);
    expect(rebuilt.projection.state.all()).toContain('announced: apple pie');
    expect(rebuilt.projection.state.all()).not.toContain('withdrawn: apple pie');
    expect(await metricValue(rebuilt.metrics, 'projection_outbox_adopted_total')).toBe(1);
    expect(await metricValue(rebuilt.metrics, 'projection_outbox_dead_letters_total')).toBe(0);
    expect(logLines).toContainEqual(expect.objectContaining({ level: 'warn', eventId: derivedEventId(posts[1]!.id, 'announced'), storedSeq: expect.any(Number) }));
    await rebuilt.projection.close();
    await freshDir.remove();
  });

  it('when the bus refuses a reaction with 400 in the middle of a batch, then it is set aside as a dead letter, counted and logged, and the others are published', async () => {
    const { projection, metrics } = await open(rules.poisoned);
    await projection.catchUp();
    const batch = [await post('before'), await post('poison'), await post('after')];

    // One delivery: the three reactions leave in one batch, which the bus refuses whole.
    await projection.deliver(batch);

    await waitFor(async () => ((await metricValue(metrics, 'projection_outbox_pending')) === 0 ? true : undefined), { what: 'the outbox to drain' });
    expect(await announcementsOf(batch[0]!)).toHaveLength(1);
    expect(await announcementsOf(batch[2]!)).toHaveLength(1);
    expect(await announcementsOf(batch[1]!)).toEqual([]);
    const poisonId = derivedEventId(batch[1]!.id, 'announced');
    const deadLetters = projection.db.prepare('SELECT event, bus_status, bus_answer FROM outbox_dead_letters').all() as Array<{ event: string; bus_status: number; bus_answer: string }>;
    expect(deadLetters).toHaveLength(1);
    expect(JSON.parse(deadLetters[0]!.event)).toMatchObject({ id: poisonId, type: 'PostCreated' });
    expect(deadLetters[0]!.bus_status).toBe(400);
    expect(JSON.parse(deadLetters[0]!.bus_answer)).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('title') });
    expect(await metricValue(metrics, 'projection_outbox_dead_letters_total')).toBe(1);
    expect(await metricValue(metrics, 'projection_outbox_dead_letters')).toBe(1);
    expect(logLines).toContainEqual(expect.objectContaining({ level: 'error', eventId: poisonId, busStatus: 400, busAnswer: expect.objectContaining({ code: 'invalid_request' }) }));

    // Later reactions go as before.
    const next = await post('next');
    await projection.deliver(next);
    await waitFor(async () => ((await announcementsOf(next)).length > 0 ? true : undefined), { what: 'the next announcement' });
  });

  it('when the bus cannot be reached, then the outbox shows as stalled in /metrics until the bus confirms again', async () => {
    const stored = await post('while the bus is away');
    const { projection, metrics } = await open(rules.before, { outboxStallAfterMs: 0 });
    await projection.catchUp();
    await bus.kill();

    await projection.deliver({ ...stored, seq: projection.lastSeq + 1, id: `${stored.id}-again` });
    const stalled = await waitFor(async () => ((await metricValue(metrics, 'projection_outbox_stalled')) === 1 ? true : undefined), { what: 'the outbox to show stalled' }).finally(() => bus.start());

    expect(stalled).toBe(true);
    await waitFor(async () => ((await metricValue(metrics, 'projection_outbox_pending')) === 0 ? true : undefined), { what: 'the outbox to drain once the bus is back' });
    expect(await metricValue(metrics, 'projection_outbox_stalled')).toBe(0);
    expect(await metricValue(metrics, 'projection_outbox_dead_letters_total')).toBe(0);
  });

  it('when the bus refuses the service itself (a wrong secret), then nothing is set aside, the reaction waits and the outbox shows as stalled at once', async () => {
    const stored = await post('sent with a wrong secret');
    const wrongSecret = createBusClient({ baseUrl: bus.url, timeoutMs: 2_000, secret: 'not-the-secret-of-this-bus-0123456789abcdef' });
    const { projection, metrics } = await open(rules.before, { busClient: wrongSecret });

    await projection.deliver({ ...stored, seq: 1 });

    await waitFor(async () => ((await metricValue(metrics, 'projection_outbox_stalled')) === 1 ? true : undefined), { what: 'the outbox to show stalled' });
    expect(await metricValue(metrics, 'projection_outbox_pending')).toBe(1);
    expect(await metricValue(metrics, 'projection_outbox_dead_letters_total')).toBe(0);
    await projection.close();
    await wrongSecret.close();
  });
});
