import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ProjectionSpec } from '@blog/common';
import { createEventServiceDeps, makeTempDir, metricValue, signedFetch, startEventBus, waitFor } from '@blog/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDoc, shellCommandsOf } from './markdown.js';

/**
 * docs/storage.md tells an operator how to read a service's dead letters and send them again, as
 * sqlite3 commands on its state.db. Their SQL is taken from the page and run here on a real service
 * state, with a real bus, and the service started again afterwards: what the bus accepts now is
 * published, what it still refuses is set aside again.
 */

/** The SQL of the page's `sqlite3 state.db '...'` commands, in order. */
function storageSql(): string[] {
  return shellCommandsOf(readDoc('docs/storage.md'))
    .map(({ command }) => /^sqlite3 state\.db '([^']+)'$/.exec(command)?.[1])
    .filter((sql): sql is string => sql !== undefined);
}

// A service with no state of its own: only its outbox matters here.
const spec: ProjectionSpec<object> = { open: () => ({}), apply: () => false };

describe('the dead-letter commands of docs/storage.md', () => {
  let bus: Awaited<ReturnType<typeof startEventBus>>;
  let data: Awaited<ReturnType<typeof makeTempDir>>;

  beforeAll(async () => {
    bus = await startEventBus();
    data = await makeTempDir();
  });

  afterAll(async () => {
    await bus?.destroy();
    await data?.remove();
  });

  const openService = () => createEventServiceDeps(spec, { busUrl: bus.url, dataDir: data.path });
  const stateDb = () => new DatabaseSync(path.join(data.path, 'state.db'));
  const loggedIds = async () => ((await (await signedFetch(`${bus.url}/events`)).json()) as Array<{ id: string }>).map((event) => event.id);

  it('when an operator reads the dead letters and sends them again with the service stopped, then the bus gets those it accepts and the others are set aside again', async () => {
    const [readDeadLetters, sendAgain] = storageSql();
    expect(readDeadLetters).toMatch(/^SELECT /);
    expect(sendAgain).toMatch(/^INSERT INTO outbox /);
    // Arrange: one reaction the bus refuses (an empty title) is set aside by the running service...
    const refused = { id: `refused-${randomUUID()}`, type: 'PostCreated', data: { id: `p-${randomUUID()}`, title: '' } };
    const acceptable = { id: `accepted-${randomUUID()}`, type: 'PostCreated', data: { id: `p-${randomUUID()}`, title: 'sent again' } };
    await (await openService()).projection.close();
    const before = stateDb();
    before.prepare('INSERT INTO outbox (event) VALUES (?)').run(JSON.stringify(refused));
    before.close();
    const first = await openService();
    await waitFor(async () => ((await metricValue(first.metrics, 'projection_outbox_dead_letters')) === 1 ? true : undefined), {
      what: 'the refused reaction to be set aside',
    });
    await first.projection.close();
    // ...and one the bus would take now stands for a reaction refused by an older bus.
    const stopped = stateDb();
    stopped
      .prepare(
        "INSERT INTO outbox_dead_letters (position, event, bus_status, bus_answer, refused_at) VALUES (1000, ?, 400, '{}', 'earlier')",
      )
      .run(JSON.stringify(acceptable));

    // Act: the page's commands, with the service stopped, then the service started again.
    const listed = stopped.prepare(readDeadLetters!).all() as Array<{
      position: number;
      bus_status: number;
      bus_answer: string;
      event: string;
    }>;
    stopped.exec(sendAgain!);
    stopped.close();
    const again = await openService();
    await waitFor(async () => ((await metricValue(again.metrics, 'projection_outbox_pending')) === 0 ? true : undefined), {
      what: 'the outbox to drain',
    });

    // Assert
    expect(listed.map((row) => ({ event: JSON.parse(row.event) as unknown, status: row.bus_status }))).toEqual([
      { event: refused, status: 400 },
      { event: acceptable, status: 400 },
    ]);
    expect(await loggedIds()).toContain(acceptable.id);
    expect(await loggedIds()).not.toContain(refused.id);
    const setAside = again.projection.db.prepare('SELECT event FROM outbox_dead_letters').all() as Array<{ event: string }>;
    expect(setAside.map((row) => JSON.parse(row.event) as unknown)).toEqual([refused]);
    await again.projection.close();
  });
});
