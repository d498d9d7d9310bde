import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { AppError, inTransaction, MetaTable, openDatabase, type DatabaseSync, type EventEnvelope, type Logger, type PublishRequest, type StatementSync } from '@blog/common';
import { defaultTailCacheLimits, EventIndex, idConflict, sameEvent, storeFailed, type TailCacheLimits } from './event-index.js';
import type { AppendResult, EventStore, StoredEvent } from './event-store.js';
import { importOldLog } from './old-log-import.js';
import { SubscriberCursors } from './subscriber-cursors.js';

export const databaseFile = 'event-bus.db';

export interface EventLogOptions {
  /** How much of the newest log is kept in memory for live delivery and long polls. */
  cache?: TailCacheLimits;
}

/** What a commit waits for: the events of one turn of the event loop, and who waits for them. */
interface PendingCommit {
  events: StoredEvent[];
  byId: Map<string, EventEnvelope>;
  done: PromiseWithResolvers<void>;
}

/**
 * The embedded log: `event-bus.db` under DATA_DIR, a SQLite database with one row per event, and
 * the subscribers' cursors beside it. A commit is synced (synchronous=FULL) before anything is
 * acknowledged or delivered, so nothing a subscriber applied can vanish in a crash or power loss.
 * Memory does not grow with the log: ids are found through the table's UNIQUE index, reads come
 * from the table through the index's bounded cache of the newest events. One process is its only
 * writer.
 *
 * Group commit: every append made during one turn of the event loop is written in one transaction
 * right after that turn, synchronously. Through the thread pool each commit would cost a round trip
 * and a wait for the busy event loop to pick up the answer; done in place, the loop stops for
 * exactly the disk's time, and requests that arrive meanwhile simply join the next commit.
 */
export class EventLog implements EventStore {
  readonly index: EventIndex;
  /** The highest seq committed; the pending events follow it. */
  private head: number;
  private pending: PendingCommit | undefined;
  private closing = false;
  private readonly byIdStatement: StatementSync;
  private readonly insertStatement: StatementSync;
  private readonly pageStatement: StatementSync;

  private constructor(
    private readonly db: DatabaseSync,
    readonly logId: string,
    cache: TailCacheLimits,
  ) {
    this.index = new EventIndex(cache);
    this.byIdStatement = db.prepare('SELECT seq, json FROM events WHERE id = ?');
    this.insertStatement = db.prepare('INSERT INTO events (seq, id, json) VALUES (?, ?, ?)');
    this.pageStatement = db.prepare('SELECT seq, id, json FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?');
    // The primary key's b-tree gives the last seq without reading the log (no count(*)).
    this.head = (db.prepare('SELECT max(seq) AS head FROM events').get() as { head: number | null }).head ?? 0;
    this.index.makeVisible(this.head);
  }

  /** Opens (or creates) the database, bringing in an old `events.log` first if there is one. */
  static open(dataDir: string, logger: Logger, options: EventLogOptions = {}): Promise<EventLog> {
    // All of it is synchronous; the promise (as every store opens) also turns a throw into a rejection.
    return new Promise((resolve) => resolve(EventLog.openNow(dataDir, logger, options)));
  }

  private static openNow(dataDir: string, logger: Logger, { cache = defaultTailCacheLimits }: EventLogOptions): EventLog {
    let db: DatabaseSync | undefined;
    try {
      db = openDatabase(path.join(dataDir, databaseFile), { durability: 'full' });
      const logId = createSchema(db);
      importOldLog(db, dataDir, logger);
      const log = new EventLog(db, logId, cache);
      logger.info({ events: log.head, logId }, 'event log opened');
      return log;
    } catch (error) {
      db?.close();
      throw error;
    }
  }

  /** The saved positions of these subscribers, kept in the same database. */
  cursors(names: readonly string[]): SubscriberCursors {
    return new SubscriberCursors(this.db, names);
  }

  async appendAll(requests: readonly PublishRequest[]): Promise<AppendResult[]> {
    if (this.index.failed || this.closing) throw storeFailed();
    let waitsForCommit = false;
    const fresh = new Map<string, EventEnvelope>();
    // Planned whole before anything is queued: a conflict anywhere refuses the whole batch.
    const plan = requests.map((request): AppendResult => {
      const id = request.id ?? randomUUID();
      const queued = this.pending?.byId.get(id);
      if (queued) {
        if (!sameEvent(queued, request)) throw idConflict(id, `seq ${queued.seq}`);
        waitsForCommit = true;
        return { envelope: queued, created: false };
      }
      // A generated id is new by construction: no need to look it up.
      const stored = request.id === undefined ? undefined : this.storedEvent(id);
      if (stored) {
        if (!sameEvent(stored, request)) throw idConflict(id, `seq ${stored.seq}`, stored);
        return { envelope: stored, created: false };
      }
      const inBatch = fresh.get(id);
      if (inBatch) {
        if (!sameEvent(inBatch, request)) throw idConflict(id, 'earlier in the same batch');
        return { envelope: inBatch, created: false };
      }
      const seq = this.head + (this.pending?.events.length ?? 0) + fresh.size + 1;
      const envelope = { id, seq, type: request.type, data: request.data } as EventEnvelope;
      fresh.set(id, envelope);
      return { envelope, created: true };
    });
    if (fresh.size === 0 && !waitsForCommit) return plan;

    const pending = this.pendingCommit();
    for (const envelope of fresh.values()) {
      pending.events.push({ seq: envelope.seq, id: envelope.id, json: JSON.stringify({ id: envelope.id, seq: envelope.seq, type: envelope.type, data: envelope.data }) });
      pending.byId.set(envelope.id, envelope);
    }
    // A retry of an event still on its way to disk is answered only once it is there.
    await pending.done.promise;
    return plan;
  }

  read(after: number, limit: number, maxBytes = Number.POSITIVE_INFINITY): Promise<StoredEvent[]> {
    const cached = this.index.cached(after, limit, maxBytes);
    if (cached) return Promise.resolve(cached);
    const end = Math.min(this.index.visibleSeq, after + limit);
    const page: StoredEvent[] = [];
    if (end <= after || !this.db.isOpen) return Promise.resolve(page);
    let bytes = 0;
    // Iterated, not fetched whole: a byte limit stops it after the rows it needs.
    for (const row of this.pageStatement.iterate(after, end, end - after) as Iterable<StoredEvent>) {
      bytes += row.json.length + 1;
      if (page.length > 0 && bytes > maxBytes) break;
      page.push(row);
    }
    return Promise.resolve(page);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.pending?.done.promise.catch(() => undefined);
    if (this.db.isOpen) this.db.close();
  }

  private storedEvent(id: string): EventEnvelope | undefined {
    const row = this.byIdStatement.get(id) as { seq: number; json: string } | undefined;
    return row && (JSON.parse(row.json) as EventEnvelope);
  }

  private pendingCommit(): PendingCommit {
    if (this.pending) return this.pending;
    const pending: PendingCommit = { events: [], byId: new Map(), done: Promise.withResolvers<void>() };
    // Nobody is left with an unhandled rejection when every waiter was answered by a conflict.
    pending.done.promise.catch(() => undefined);
    this.pending = pending;
    setImmediate(() => this.commit(pending));
    return pending;
  }

  private commit(pending: PendingCommit): void {
    this.pending = undefined;
    const { events } = pending;
    if (events.length === 0) return pending.done.resolve();
    try {
      inTransaction(this.db, () => {
        for (const event of events) this.insertStatement.run(event.seq, event.id, event.json);
      });
    } catch (error) {
      // After a failed commit what is on disk is unknown to us: refuse everything until a restart.
      this.index.markFailed();
      return pending.done.reject(new AppError({ status: 503, code: 'event_log_failed', message: 'The event could not be written to disk', cause: error }));
    }
    this.head = events.at(-1)!.seq;
    this.index.remember(events);
    this.index.makeVisible(this.head);
    pending.done.resolve();
  }
}

/** Creates the tables of a new database (and its log id); returns the log id. */
function createSchema(db: DatabaseSync): string {
  return inTransaction(db, () => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, json TEXT NOT NULL) STRICT;
      CREATE TABLE IF NOT EXISTS cursors (subscriber TEXT PRIMARY KEY, seq INTEGER NOT NULL) STRICT;
    `);
    const meta = new MetaTable(db);
    let logId = meta.get('log_id');
    if (logId === undefined) {
      logId = randomUUID();
      meta.set('log_id', logId);
    }
    return logId;
  });
}
