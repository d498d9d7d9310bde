import type { BusClient } from './bus-client.js';
import { batchLimits, type PublishRequest } from './events.js';
import { backoffMs, sleep } from './backoff.js';
import type { Logger } from './logging.js';
import type { DatabaseSync, StatementSync } from './sqlite.js';

/**
 * Events a service publishes in reaction to the log (moderation's verdicts, comments' updates).
 * They are written to the `outbox` table in the same transaction as the event that caused them, and
 * published from there in order, in batches, retried until the bus has them: a crash or a bus
 * outage delays a reaction but never loses it. Their ids are derived from the cause, so publishing
 * one again (after a crash between the bus's answer and the delete) is stored once by the bus.
 * Only one batch is ever read into memory, however many are waiting.
 */
export class Outbox {
  private wake = Promise.withResolvers<void>();
  private readonly stopping = new AbortController();
  private pump: Promise<void> = Promise.resolve();
  private readonly insert: StatementSync;
  private readonly oldest: StatementSync;
  private readonly remove: StatementSync;
  private readonly count: StatementSync;

  constructor(
    db: DatabaseSync,
    private readonly bus: BusClient,
    private readonly logger: Logger,
  ) {
    db.exec('CREATE TABLE IF NOT EXISTS outbox (position INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL) STRICT');
    this.insert = db.prepare('INSERT INTO outbox (event) VALUES (?)');
    this.oldest = db.prepare('SELECT position, event FROM outbox ORDER BY position LIMIT ?');
    this.remove = db.prepare('DELETE FROM outbox WHERE position <= ?');
    this.count = db.prepare('SELECT count(*) AS pending FROM outbox');
  }

  /** How many reactions the bus has not confirmed yet. */
  get pending(): number {
    return (this.count.get() as { pending: number }).pending;
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
      const rows = this.oldest.all(batchLimits.maxEvents) as Array<{ position: number; event: string }>;
      if (rows.length === 0) {
        await this.wake.promise;
        this.wake = Promise.withResolvers<void>();
        continue;
      }
      try {
        await this.bus.publishAll(rows.map((row) => JSON.parse(row.event) as PublishRequest));
        this.remove.run(rows.at(-1)!.position);
        failures = 0;
      } catch (error) {
        const delayMs = backoffMs(failures, 100, 5_000);
        if (failures % 10 === 0) this.logger.warn({ error: (error as Error).message, pending: this.pending, retryInMs: delayMs }, 'publishing reactions failed; retrying');
        failures += 1;
        await sleep(delayMs, this.stopping.signal);
      }
    }
  }
}
