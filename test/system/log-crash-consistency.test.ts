import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { headSeqHeader, logIdHeader } from '@blog/common';
import { freePort, makeTempDir, ServiceProcess } from '@blog/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The event log under crashes: the real bus process is killed with SIGKILL in the middle of bursts
 * of concurrent publishes (single events and small batches), many times over the same data. Every
 * time, the bus must start again (SQLite rolls back whatever commit the kill interrupted) with every
 * acknowledged event exactly once, numbered without gaps, under the same log id; a producer's retry
 * of an unacknowledged event (same id) must be stored at most once; and the database must pass
 * SQLite's own integrity check. That an acknowledged commit also survives a power cut is
 * synchronous=FULL's promise, which a kill cannot show.
 */

const ROUNDS = 16;
const BURST = 60;

interface StoredEvent {
  id: string;
  seq: number;
  type: string;
  data: { id: string; title: string };
}

describe('the event log, killed mid-write', () => {
  let data: Awaited<ReturnType<typeof makeTempDir>>;
  let bus: ServiceProcess;

  beforeAll(async () => {
    data = await makeTempDir('blog-crash-');
    bus = new ServiceProcess('event-bus', await freePort(), { LOG_LEVEL: 'warn', SUBSCRIBERS: '', DATA_DIR: data.path });
  });
  afterAll(async () => {
    await bus.kill();
    await data.remove();
  });

  const event = (id: string) => ({ id, type: 'PostCreated', data: { id: id.replaceAll('.', '-'), title: `title of ${id}` } });
  /** Publishes these ids (one event, or a batch); the status, or 0 when the bus died first. */
  const publish = async (ids: readonly string[]) => {
    try {
      const response = await fetch(`${bus.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(ids.length === 1 ? event(ids[0]!) : ids.map(event)),
        signal: AbortSignal.timeout(5_000),
      });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 0;
    }
  };
  const logIdNow = async () => (await fetch(`${bus.url}/events?after=0&limit=1`)).headers.get(logIdHeader);
  /** The whole log, page by page up to the head the first page reports. */
  const readLog = async () => {
    const events: StoredEvent[] = [];
    for (let head = Number.POSITIVE_INFINITY; events.length < head; ) {
      const response = await fetch(`${bus.url}/events?after=${events.length}&limit=500`);
      head = Number(response.headers.get(headSeqHeader));
      const page = (await response.json()) as StoredEvent[];
      if (page.length === 0) break;
      events.push(...page);
    }
    return events;
  };

  it(`when the bus is SIGKILLed during ${ROUNDS} bursts, then every acknowledged event survives exactly once, numbered without gaps, in the same log`, async () => {
    const acknowledged = new Set<string>();
    const unacknowledged = new Set<string>();
    const logIds = new Set<string | null>();

    for (let round = 0; round < ROUNDS; round += 1) {
      await bus.start();
      logIds.add(await logIdNow());
      // Retry what a crash left unanswered: the same ids, as a careful producer would.
      for (const id of unacknowledged) if ((await publish([id])) < 300) acknowledged.add(id);
      unacknowledged.clear();

      const killAfter = 1 + Math.floor(Math.random() * (BURST / 2));
      let answered = 0;
      // Every fifth request is a batch of three: a batch is committed whole or not at all.
      const requests = Array.from({ length: BURST }, (_, i) => (i % 5 === 0 ? [0, 1, 2].map((j) => `round${round}.batch${i}.${j}`) : [`round${round}.event${i}`]));
      await Promise.all(
        requests.map(async (ids) => {
          const status = await publish(ids);
          for (const id of ids) (status >= 200 && status < 300 ? acknowledged : unacknowledged).add(id);
          answered += 1;
          if (answered === killAfter) await bus.kill();
        }),
      );
      await bus.kill();
    }

    await bus.start();
    logIds.add(await logIdNow());
    const log = await readLog();
    await bus.kill();
    const storedIds = log.map((stored) => stored.id);
    const stored = new Set(storedIds);
    const lost = [...acknowledged].filter((id) => !stored.has(id));
    console.log(`crash consistency: ${ROUNDS} kills, ${acknowledged.size} acknowledged, ${log.length} stored, ${lost.length} lost`);

    expect(lost, 'acknowledged events missing after the crashes').toEqual([]);
    expect(stored.size, 'an event id stored twice').toBe(storedIds.length);
    expect(log.map((event) => event.seq)).toEqual(log.map((_, i) => i + 1));
    expect(log.every((event) => event.data.title === `title of ${event.id}`)).toBe(true);
    expect(acknowledged.size).toBeGreaterThan(ROUNDS);
    expect(logIds.size, 'the log id changed across restarts').toBe(1);
    expect([...logIds][0]).toMatch(/^[0-9a-f-]{36}$/);

    const db = new DatabaseSync(path.join(data.path, 'event-bus.db'));
    try {
      expect(db.prepare('PRAGMA integrity_check').all()).toEqual([{ integrity_check: 'ok' }]);
      expect(db.prepare('SELECT count(*) AS events, max(seq) AS head FROM events').get()).toEqual({ events: log.length, head: log.length });
    } finally {
      db.close();
    }
  });
});
