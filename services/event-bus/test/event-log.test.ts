import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createLogger, type PublishRequest } from '@blog/common';
import { makeTempDir } from '@blog/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseFile, EventLog } from '../src/event-log.js';
import { encodeRecord } from '../src/old-log-format.js';

const logger = createLogger('event-log-test', 'silent');
/** A cache far smaller than the tests' logs, so that reads and dedup have to go to the database. */
const tinyCache = { cache: { maxEvents: 2, maxBytes: 1024 * 1024 } };

const post = (n: number, title = `post ${n}`): PublishRequest & { id: string } => ({ id: `event-${n}`, type: 'PostCreated', data: { id: `p${n}`, title } });
const envelope = (n: number) => JSON.stringify({ id: `event-${n}`, seq: n, type: 'PostCreated', data: { id: `p${n}`, title: `post ${n}` } });

describe('EventLog', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  const open: EventLog[] = [];
  const openLog = async (options = tinyCache) => {
    const log = await EventLog.open(dir.path, logger, options);
    open.push(log);
    return log;
  };

  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    for (const log of open.splice(0)) await log.close();
    await dir.remove();
  });

  describe('with a cache smaller than the log', () => {
    let log: EventLog;
    beforeEach(async () => {
      log = await openLog();
      for (let n = 1; n <= 10; n += 1) await log.appendAll([post(n)]);
    });

    it('when an id stored long ago is published again, then the stored event is answered and nothing is appended', async () => {
      const [retry] = await log.appendAll([post(1)]);

      expect(retry).toEqual({ envelope: JSON.parse(envelope(1)), created: false });
      expect(log.index.visibleSeq).toBe(10);
      await expect(log.appendAll([post(1, 'a different title')])).rejects.toMatchObject({ status: 409 });
    });

    it('when reading from the start, then the events come from the database in order, within the byte limit', async () => {
      expect(await log.read(0, 3)).toEqual([1, 2, 3].map((n) => ({ seq: n, id: `event-${n}`, json: envelope(n) })));
      expect((await log.read(7, 100)).map((event) => event.seq)).toEqual([8, 9, 10]);
      expect((await log.read(0, 100, envelope(1).length + envelope(2).length + 2)).map((event) => event.seq)).toEqual([1, 2]);
      expect((await log.read(0, 100, 1)).map((event) => event.seq)).toEqual([1]);
      expect(await log.read(10, 100)).toEqual([]);
    });
  });

  it('when one id is published by two callers in the same turn, then it is stored once and both get the same event', async () => {
    const log = await openLog();

    const [first, second, other] = await Promise.all([log.appendAll([post(1)]), log.appendAll([post(1)]), log.appendAll([post(2)])]);

    expect(first).toEqual([{ envelope: JSON.parse(envelope(1)), created: true }]);
    expect(second).toEqual([{ envelope: JSON.parse(envelope(1)), created: false }]);
    expect(other[0]!.envelope.seq).toBe(2);
    expect((await log.read(0, 10)).map((event) => event.id)).toEqual(['event-1', 'event-2']);
  });

  it('when many publishes arrive in one turn, then they are numbered without gaps in arrival order and all are durable when answered', async () => {
    const log = await openLog();

    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => log.appendAll([post(i + 1)])));
    await log.close();
    const reopened = await openLog();

    expect(results.map(([result]) => result!.envelope.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await reopened.read(0, 100)).map((event) => event.json)).toEqual(Array.from({ length: 50 }, (_, i) => envelope(i + 1)));
  });

  it('when a commit fails (another writer took the next seq), then the publish gets 503 and the log refuses everything after', async () => {
    const log = await openLog();
    await log.appendAll([post(1)]);
    const intruder = new DatabaseSync(path.join(dir.path, databaseFile));
    intruder.prepare('INSERT INTO events (seq, id, json) VALUES (2, ?, ?)').run('intruder', '{}');
    intruder.close();

    await expect(log.appendAll([post(2)])).rejects.toMatchObject({ status: 503 });
    expect(log.index.failed).toBe(true);
    await expect(log.appendAll([post(3)])).rejects.toMatchObject({ status: 503 });
    expect(log.index.visibleSeq).toBe(1);
  });

  describe('a data dir from before the database (events.log, cursors.json)', () => {
    const writeOldLog = async (records: string[], cursors?: Record<string, number>) => {
      await writeFile(path.join(dir.path, 'events.log'), records.map(encodeRecord).join(''));
      if (cursors) await writeFile(path.join(dir.path, 'cursors.json'), JSON.stringify(cursors));
    };
    const oldEvents = (count: number) => Array.from({ length: count }, (_, i) => envelope(i + 1));

    it('when the bus starts on it, then the events and cursors are imported once and the old files are kept as *.imported', async () => {
      await writeOldLog(oldEvents(5), { query: 4, posts: 5 });

      const log = await openLog();
      await log.appendAll([post(6)]);
      await log.close();
      const reopened = await openLog();

      expect((await reopened.read(0, 100)).map((event) => event.json)).toEqual(oldEvents(6));
      expect(reopened.cursors(['query', 'posts', 'new']).get('query')).toBe(4);
      expect(reopened.cursors(['posts']).get('posts')).toBe(5);
      expect(reopened.cursors(['new']).get('new')).toBe(0);
      expect(existsSync(path.join(dir.path, 'events.log'))).toBe(false);
      expect(existsSync(path.join(dir.path, 'cursors.json'))).toBe(false);
      expect(await readFile(path.join(dir.path, 'events.log.imported'), 'utf8')).toBe(oldEvents(5).map(encodeRecord).join(''));
      expect(existsSync(path.join(dir.path, 'cursors.json.imported'))).toBe(true);
    });

    it('when a start stopped between committing the import and renaming the old files, then the next start only renames them', async () => {
      await writeOldLog(oldEvents(3), { query: 3 });
      await (await openLog()).close();
      await rename(path.join(dir.path, 'events.log.imported'), path.join(dir.path, 'events.log'));

      const log = await openLog();

      expect((await log.read(0, 100)).map((event) => event.json)).toEqual(oldEvents(3));
      expect(existsSync(path.join(dir.path, 'events.log'))).toBe(false);
      expect(existsSync(path.join(dir.path, 'events.log.imported'))).toBe(true);
    });

    it('when its last record was torn by a crash, then the intact records are imported and the torn one dropped', async () => {
      await writeOldLog(oldEvents(3));
      await writeFile(path.join(dir.path, 'events.log'), encodeRecord(envelope(4)).slice(0, 20), { flag: 'a' });

      const log = await openLog();

      expect((await log.read(0, 100)).map((event) => event.seq)).toEqual([1, 2, 3]);
      expect((await log.appendAll([post(4)]))[0]!.envelope.seq).toBe(4);
    });

    it('when it is damaged before its last write, then the start is refused, naming the file and what to do, and nothing is imported', async () => {
      // More than one write's worth after the damage: not a torn write from a crash.
      const intact = oldEvents(20_000).map(encodeRecord).join('');
      await writeFile(path.join(dir.path, 'events.log'), intact.replace('"post 11"', '"post XI"'));

      const opening = EventLog.open(dir.path, logger);

      await expect(opening).rejects.toThrow(path.join(dir.path, 'events.log'));
      await expect(opening).rejects.toThrow(/damaged at byte \d+.*Restore events\.log from a backup, or move it/);
      expect(existsSync(path.join(dir.path, 'events.log'))).toBe(true);
      const db = new DatabaseSync(path.join(dir.path, databaseFile));
      expect(db.prepare('SELECT count(*) AS events FROM events').get()).toEqual({ events: 0 });
      db.close();
    });

    it('when its seqs are not 1, 2, 3..., then the start is refused, naming the record', async () => {
      await writeOldLog([envelope(1), envelope(3)]);

      await expect(EventLog.open(dir.path, logger)).rejects.toThrow(/events\.log record 2 is not event 2/);
    });

    it('when the database already holds events, then a stray events.log is left alone', async () => {
      const log = await openLog();
      await log.appendAll([post(1)]);
      await log.close();
      await writeOldLog([JSON.stringify({ id: 'old', seq: 1, type: 'PostCreated', data: { id: 'old', title: 'old' } })]);

      const reopened = await openLog();

      expect((await reopened.read(0, 100)).map((event) => event.id)).toEqual(['event-1']);
      expect(existsSync(path.join(dir.path, 'events.log'))).toBe(true);
    });
  });
});
