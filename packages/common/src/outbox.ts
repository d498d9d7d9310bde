import { Counter, Gauge, type Registry } from 'prom-client';
import { BusRefusedError, type BusClient } from './bus-client.js';
import { batchLimits, DeliveryEnvelope, type PublishRequest } from './events.js';
import { backoffMs, sleep } from './backoff.js';
import type { Logger } from './logging.js';
import { inTransaction, type DatabaseSync, type StatementSync } from './sqlite.js';

export interface OutboxOptions {
  db: DatabaseSync;
  bus: BusClient;
  logger: Logger;
  metrics: Registry;
  /**
   * Applies the event the log already holds under a reaction's id (the bus's 409 names it): that
   * decision is the one everybody saw, so this service takes it as its own.
   */
  adopt: (stored: DeliveryEnvelope, logId: string | undefined) => Promise<unknown>;
  /** The outbox's own tables cannot be written: nothing more is published, the process must restart. */
  onStorageFailed: (error: unknown) => void;
  /** Reactions waiting this long while every attempt fails make the outbox stalled (`projection_outbox_stalled`). */
  stallAfterMs?: number;
}

interface Row {
  position: number;
  event: string;
}

/** How long reactions may wait on failing attempts before the outbox counts as stalled. */
export const defaultOutboxStallAfterMs = 30_000;

/**
 * Events a service publishes in reaction to the log (moderation's verdicts, comments' updates).
 * They are written to the `outbox` table in the same transaction as the event that caused them, and
 * published from there in order, in batches, retried until the bus has them: a crash or a bus
 * outage delays a reaction but never loses it. Their ids are derived from the cause, so publishing
 * one again (after a crash between the bus's answer and the delete) is stored once by the bus.
 * Only one batch is ever read into memory, however many are waiting.
 *
 * A refusal (4xx) is never retried as if the bus were down, since the same request gets the same
 * answer, and it never holds up the reactions after it:
 * - 409 on a reaction's id: the log already holds another event under it (decided before this
 *   state was lost, under other rules). The logged one stands and is adopted (`adopt`).
 * - any other refusal of the event (a 400 after a schema change, say): the reaction is moved to
 *   `outbox_dead_letters`, logged as an error and counted; the ones after it go on.
 * - 401, 403, 404, 405 refuse the sender, not the event (a wrong secret or URL): retried, and the
 *   outbox shows as stalled at once. 408 and 429 are retried like an outage.
 * A batch the bus refuses is sent again one event per request up to its last event, to find the
 * one refused, unless the 409 already names it.
 */
export class Outbox {
  private wake = Promise.withResolvers<void>();
  private readonly stopping = new AbortController();
  private pump: Promise<void> = Promise.resolve();
  private readonly insert: StatementSync;
  private readonly oldest: StatementSync;
  private readonly removeUpTo: StatementSync;
  private readonly removeOne: StatementSync;
  private readonly count: StatementSync;
  private readonly insertDeadLetter: StatementSync;
  private readonly countDeadLetters: StatementSync;
  private readonly published: Counter;
  private readonly adopted: Counter;
  private readonly deadLettered: Counter;
  private readonly stallAfterMs: number;
  /** While set, events up to this position go one per request (see the class comment). */
  private isolateUpTo = 0;
  /** When the current run of failed attempts began; undefined after a success or with nothing waiting. */
  private failingSince: number | undefined;
  /** The bus refuses this service itself (its answer), not one of its events. */
  private refusedSender: string | undefined;
  private lastError = '';

  constructor(private readonly options: OutboxOptions) {
    const { db, metrics } = options;
    this.stallAfterMs = options.stallAfterMs ?? defaultOutboxStallAfterMs;
    db.exec('CREATE TABLE IF NOT EXISTS outbox (position INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL) STRICT');
    // What the bus refused, with its answer, for an operator to read and send again (see docs/storage.md).
    db.exec(
      'CREATE TABLE IF NOT EXISTS outbox_dead_letters (position INTEGER PRIMARY KEY, event TEXT NOT NULL, bus_status INTEGER NOT NULL, bus_answer TEXT NOT NULL, refused_at TEXT NOT NULL) STRICT',
    );
    this.insert = db.prepare('INSERT INTO outbox (event) VALUES (?)');
    this.oldest = db.prepare('SELECT position, event FROM outbox ORDER BY position LIMIT ?');
    this.removeUpTo = db.prepare('DELETE FROM outbox WHERE position <= ?');
    this.removeOne = db.prepare('DELETE FROM outbox WHERE position = ?');
    this.count = db.prepare('SELECT count(*) AS n FROM outbox');
    this.insertDeadLetter = db.prepare('INSERT OR REPLACE INTO outbox_dead_letters (position, event, bus_status, bus_answer, refused_at) VALUES (?, ?, ?, ?, ?)');
    this.countDeadLetters = db.prepare('SELECT count(*) AS n FROM outbox_dead_letters');

    const pendingGauge: Gauge = new Gauge({
      name: 'projection_outbox_pending',
      help: 'Events published in reaction and not yet confirmed by the bus',
      registers: [metrics],
      collect: () => pendingGauge.set(this.pending),
    });
    const stalledGauge: Gauge = new Gauge({
      name: 'projection_outbox_stalled',
      help: '1 while reactions wait and the bus has confirmed none for a while, or refuses this service; alert on it',
      registers: [metrics],
      collect: () => stalledGauge.set(this.stalled ? 1 : 0),
    });
    const deadLettersGauge: Gauge = new Gauge({
      name: 'projection_outbox_dead_letters',
      help: 'Reactions the bus refused, kept in the outbox_dead_letters table',
      registers: [metrics],
      collect: () => deadLettersGauge.set(this.deadLetters),
    });
    this.published = new Counter({ name: 'projection_outbox_published_total', help: 'Reactions the bus confirmed', registers: [metrics] });
    this.adopted = new Counter({
      name: 'projection_outbox_adopted_total',
      help: 'Reactions whose id the log already held for another event: the logged event was adopted instead',
      registers: [metrics],
    });
    this.deadLettered = new Counter({ name: 'projection_outbox_dead_letters_total', help: 'Reactions the bus refused, set aside in outbox_dead_letters', registers: [metrics] });
  }

  /** How many reactions the bus has not confirmed yet. */
  get pending(): number {
    return this.countOf(this.count);
  }

  /** How many reactions the bus refused (the rows of `outbox_dead_letters`). */
  get deadLetters(): number {
    return this.countOf(this.countDeadLetters);
  }

  /** Reactions wait and nothing gets through: the bus refuses this service, or every attempt failed for `stallAfterMs`. */
  get stalled(): boolean {
    const failing = this.refusedSender !== undefined || (this.failingSince !== undefined && Date.now() - this.failingSince >= this.stallAfterMs);
    return failing && this.pending > 0;
  }

  /** Starts publishing what is waiting (left by an earlier run too). */
  start(): void {
    this.pump = this.publishForever();
  }

  /** Stores reactions; call it inside the transaction that applies their cause. */
  add(events: readonly PublishRequest[]): void {
    for (const event of events) this.insert.run(JSON.stringify(event));
  }

  /** Wakes the publisher once the transaction that added reactions has committed. */
  notify(): void {
    this.wake.resolve();
  }

  /** Stops after the batch under way (bounded by the bus client's timeout); the rest stays in the table. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake.resolve();
    await this.pump;
  }

  private async publishForever(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      try {
        const rows = this.nextBatch();
        if (rows.length === 0) {
          this.failingSince = undefined;
          this.refusedSender = undefined;
          await this.wake.promise;
          this.wake = Promise.withResolvers<void>();
          continue;
        }
        if (await this.publish(rows)) {
          failures = 0;
          continue;
        }
        const delayMs = backoffMs(failures, 100, 5_000);
        if (failures % 10 === 0) this.logRetry(delayMs);
        failures += 1;
        await sleep(delayMs, this.stopping.signal);
      } catch (error) {
        // Only the outbox's own tables throw here; the process is failed and restarts with them as they are.
        this.options.onStorageFailed(error);
        return;
      }
    }
  }

  /** The oldest reactions, as many as one request to the bus may carry (one while isolating). */
  private nextBatch(): Row[] {
    const rows = this.oldest.all(this.isolateUpTo > 0 ? 1 : batchLimits.maxEvents) as unknown as Row[];
    let bytes = 0;
    const over = rows.findIndex((row) => (bytes += row.event.length + 1) > batchLimits.maxBytes);
    return over === -1 ? rows : rows.slice(0, Math.max(1, over));
  }

  /** One attempt; resolves false when the batch must be tried again later. Storage errors are thrown. */
  private async publish(rows: Row[]): Promise<boolean> {
    const last = rows.at(-1)!;
    let refusal: BusRefusedError | undefined;
    try {
      await this.options.bus.publishAll(rows.map((row) => JSON.parse(row.event) as PublishRequest));
    } catch (error) {
      if (!(error instanceof BusRefusedError) || [408, 429].includes(error.busStatus)) return this.failed(error as Error);
      if ([401, 403, 404, 405].includes(error.busStatus)) {
        this.refusedSender = error.message;
        return this.failed(error);
      }
      refusal = error;
    }
    if (refusal === undefined) {
      this.removeUpTo.run(last.position);
      this.published.inc(rows.length);
    } else {
      const refused = rows.length > 1 ? this.rowOfStoredConflict(rows, refusal) : rows[0];
      if (refused) await this.setAside(refused, refusal);
      else this.isolateUpTo = last.position;
    }
    if (rows.length === 1 && last.position >= this.isolateUpTo) this.isolateUpTo = 0;
    this.failingSince = undefined;
    this.refusedSender = undefined;
    return true;
  }

  private failed(error: Error): false {
    this.failingSince ??= Date.now();
    this.lastError = error.message;
    return false;
  }

  private logRetry(delayMs: number): void {
    const fields = { error: this.lastError, pending: this.pending, retryInMs: delayMs };
    if (this.refusedSender) this.options.logger.error(fields, 'the event bus refuses this service (EVENT_BUS_URL, EVENT_BUS_SECRET?); reactions wait');
    else this.options.logger.warn(fields, 'publishing reactions failed; retrying');
  }

  /** The row a 409 names, when the bus also sent the event it holds under that id. */
  private rowOfStoredConflict(rows: Row[], refusal: BusRefusedError): Row | undefined {
    const stored = storedConflict(refusal);
    return stored && rows.find((row) => (JSON.parse(row.event) as PublishRequest).id === stored.id);
  }

  /** A reaction the bus refused leaves the outbox: adopted when the log holds its id, else a dead letter. */
  private async setAside(row: Row, refusal: BusRefusedError): Promise<void> {
    const { logger, db } = this.options;
    const event = JSON.parse(row.event) as PublishRequest;
    const stored = storedConflict(refusal);
    if (stored && stored.id === event.id) {
      this.removeOne.run(row.position);
      this.adopted.inc();
      logger.warn(
        { eventId: event.id, type: event.type, storedSeq: stored.seq, stored: stored.data, refused: event.data },
        "the log already holds another event under this reaction's id; the logged one stands",
      );
      await this.options.adopt(stored, refusal.logId).catch((error: unknown) => {
        // It is in the log: the projection applies it in order anyway.
        logger.warn({ err: error, eventId: stored.id, seq: stored.seq }, 'applying the logged event at once failed; it is applied in log order');
      });
      return;
    }
    const answer = refusal.answer ?? { message: refusal.message };
    inTransaction(db, () => {
      this.insertDeadLetter.run(row.position, row.event, refusal.busStatus, JSON.stringify(answer), new Date().toISOString());
      this.removeOne.run(row.position);
    });
    this.deadLettered.inc();
    logger.error(
      { eventId: event.id, type: event.type, busStatus: refusal.busStatus, busAnswer: answer, position: row.position },
      'the event bus refused a reaction; it is set aside in outbox_dead_letters',
    );
  }

  private countOf(statement: StatementSync): number {
    return (statement.get() as { n: number }).n;
  }
}

/** The event a 409 `event_id_conflict` says the log holds under the refused id. */
function storedConflict(refusal: BusRefusedError): DeliveryEnvelope | undefined {
  if (refusal.busStatus !== 409 || refusal.answer?.code !== 'event_id_conflict') return undefined;
  const details = refusal.answer.details as { stored?: unknown } | undefined;
  return DeliveryEnvelope.safeParse(details?.stored).data;
}
