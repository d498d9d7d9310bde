import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { BusClient } from './bus-client.js';
import { AppError } from './errors.js';
import { batchLimits, BlogEvent, eventTypes, type DeliveryAck, type DeliveryEnvelope, type EventEnvelope, type PublishRequest } from './events.js';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logging.js';
import { Outbox } from './outbox.js';
import { inTransaction, MetaTable, openDatabase, type DatabaseSync } from './sqlite.js';

/**
 * What a service does with the event stream, as plain functions over its own tables (see each
 * service's `domain/`). `apply` must be deterministic: the same events in the same order give the
 * same state, which is what lets any consumer be rebuilt from the bus's log.
 */
export interface ProjectionSpec<S> {
  /** Creates the service's tables if they are missing and returns its handle on them (`S`). */
  open(db: DatabaseSync): S;
  /** Applies one event; returns whether anything changed. Runs inside the batch's transaction. */
  apply(state: S, event: EventEnvelope): boolean;
  /**
   * Events to publish because of this one, computed before it is applied and stored with it (see
   * Outbox). Their ids must be derived from the event's id so that a redelivery or a rebuild
   * publishes nothing new (the bus deduplicates by id).
   */
  react?(state: S, event: EventEnvelope): PublishRequest[];
}

export interface ProjectionOptions<S> {
  spec: ProjectionSpec<S>;
  dataDir: string;
  bus: BusClient;
  logger: Logger;
  metrics: Registry;
  /** Marked failed (so /healthz answers 503) once the state cannot be stored. */
  lifecycle?: Lifecycle;
  /** Events asked of the bus per catch-up request. */
  pageSize?: number;
  /** Deliveries and catch-ups that may wait for the one under way; more get 503 `state_busy`. */
  maxWaiting?: number;
  /** See `Outbox`: how long failing attempts make a waiting outbox stalled. */
  outboxStallAfterMs?: number;
}

/** Enough for every connection the bus and the public routes keep open at once, and far from a memory problem. */
export const defaultMaxWaiting = 1_000;

/** Where a service keeps its state under DATA_DIR. */
export const stateDatabaseFile = 'state.db';
/** What services wrote before they kept their state in SQLite. */
const oldFormatFiles = ['snapshot.json', 'journal.log'];

/** A delivery or a page from a log other than the one this state was built from. */
export class LogReplacedError extends AppError {
  constructor(stored: string, offered: string, dataDir: string) {
    super({
      status: 409,
      code: 'log_replaced',
      message:
        `This state was built from event log ${stored}, but the bus now serves log ${offered}: the bus's data was replaced ` +
        `(a new volume, another EVENT_STORE, a recreated stream), so its sequence numbers mean other events. ` +
        `Nothing more is applied. To rebuild from the new log, stop this service, delete ${path.join(dataDir, stateDatabaseFile)}* and start it again; ` +
        `to keep this state, point EVENT_BUS_URL back at the bus that holds log ${stored}.`,
    });
  }
}

/**
 * A service's state, built only from the bus's log and kept in one SQLite database under DATA_DIR.
 *
 * Invariants:
 * - Every event is applied exactly once and in log order. A delivery at or below `lastSeq` is a
 *   duplicate; a delivery past a gap first pulls the missing events from the bus.
 * - A batch's changes, the new `lastSeq` and the reactions they caused (the outbox) are committed in
 *   one transaction before the delivery is acknowledged. So a crash at any point leaves either all
 *   of a batch or none of it, and no journal of our own is needed.
 * - The state belongs to one log (its id, stored with `lastSeq`); a delivery from another log is
 *   refused, never mistaken for duplicates.
 * - A storage failure is an error the caller sees (503), never a skipped event. It is final: the
 *   error is logged, nothing more is acknowledged and the lifecycle is failed (/healthz 503), so
 *   the orchestrator restarts the process on whatever the database holds, which is consistent.
 * - Work waits for the lock in a bounded queue (`maxWaiting`); catch-ups asked for while one is
 *   waiting to start share it, so a flood of requests that each want a catch-up costs one.
 *
 * Commits use `synchronous=NORMAL`: they survive a killed process at once; a power cut may take
 * back the last ones, which the bus then sends again (reactions get the same ids, stored once).
 */
export class Projection<S> {
  readonly state: S;
  private lastSeqValue: number;
  private logIdValue: string | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private readonly maxWaiting: number;
  /** A catch-up that waits for the lock: a catch-up asked for now is answered by it. */
  private queuedCatchUp: Promise<void> | undefined;
  private storageFailure: AppError | undefined;
  private readonly pageSize: number;
  private readonly appliedTotal: Counter<'type' | 'outcome'>;
  private readonly appliedListeners = new Set<(event: EventEnvelope) => void>();
  private readonly outbox: Outbox;
  private readonly meta: MetaTable;
  private replaced: LogReplacedError | undefined;

  private constructor(
    private readonly options: ProjectionOptions<S>,
    readonly db: DatabaseSync,
  ) {
    this.meta = new MetaTable(db);
    this.outbox = new Outbox({
      db,
      bus: options.bus,
      logger: options.logger,
      metrics: options.metrics,
      adopt: (stored, logId) => this.deliver(stored, { logId }),
      onStorageFailed: (error) => this.fail(error, 'publishing reactions'),
      ...(options.outboxStallAfterMs === undefined ? {} : { stallAfterMs: options.outboxStallAfterMs }),
    });
    this.state = options.spec.open(db);
    this.lastSeqValue = Number(this.meta.get('last_seq') ?? 0);
    this.logIdValue = this.meta.get('log_id');
    this.pageSize = options.pageSize ?? 1_000;
    this.maxWaiting = options.maxWaiting ?? defaultMaxWaiting;
    this.appliedTotal = new Counter({
      name: 'projection_events_total',
      help: 'Events this service received from the log, by type and outcome',
      labelNames: ['type', 'outcome'] as const,
      registers: [options.metrics],
    });
    const lastSeqGauge: Gauge = new Gauge({
      name: 'projection_last_seq',
      help: 'Sequence number of the last event applied',
      registers: [options.metrics],
      collect: () => lastSeqGauge.set(this.lastSeq),
    });
  }

  /** Opens the state database; does not talk to the bus yet (see `catchUp`). */
  static async open<S>(options: ProjectionOptions<S>): Promise<Projection<S>> {
    const { dataDir, logger } = options;
    const present = await Promise.all(oldFormatFiles.map((file) => access(path.join(dataDir, file)).then(() => file, () => undefined)));
    const leftovers = present.filter((file) => file !== undefined);
    if (leftovers.length > 0) {
      throw new Error(
        `${dataDir} holds state in the old file format (${leftovers.join(', ')}). This version keeps its state in ${path.join(dataDir, stateDatabaseFile)} ` +
          `and rebuilds it from the event bus by itself: remove ${leftovers.map((file) => path.join(dataDir, file)).join(' and ')} (or point DATA_DIR at an empty directory) and start again.`,
      );
    }
    const db = openDatabase(path.join(dataDir, stateDatabaseFile), { durability: 'normal' });
    const projection = new Projection(options, db);
    projection.outbox.start();
    logger.info({ lastSeq: projection.lastSeq, logId: projection.logId, outbox: projection.outbox.pending }, 'state loaded');
    return projection;
  }

  /** The sequence number of the last event applied. */
  get lastSeq(): number {
    return this.lastSeqValue;
  }

  /** The id of the bus's log this state was built from (undefined before the first contact). */
  get logId(): string | undefined {
    return this.logIdValue;
  }

  /** The reactions still to publish (see Outbox). */
  get outboxPending(): number {
    return this.outbox.pending;
  }

  /** Set once the state could not be stored: nothing is acknowledged any more. */
  get storageFailed(): AppError | undefined {
    return this.storageFailure;
  }

  /** Set once the bus served another log: nothing is applied any more (see LogReplacedError). */
  get logReplaced(): LogReplacedError | undefined {
    return this.replaced;
  }

  /**
   * Handles what the bus pushed (one event or a batch, in log order), or an event this service just
   * published. `logId` is the log the events come from, when the sender said.
   */
  deliver(delivered: DeliveryEnvelope | readonly DeliveryEnvelope[], { logId }: { logId?: string | undefined } = {}): Promise<DeliveryAck> {
    const envelopes = Array.isArray(delivered) ? (delivered as readonly DeliveryEnvelope[]) : [delivered as DeliveryEnvelope];
    return this.exclusive(async () => {
      if (this.storageFailure) throw this.storageFailure;
      this.checkLog(logId);
      let status: DeliveryAck['status'] = 'duplicate';
      const fresh = envelopes.filter((envelope) => envelope.seq > this.lastSeq);
      for (const envelope of envelopes) if (envelope.seq <= this.lastSeq) this.appliedTotal.inc({ type: envelope.type, outcome: 'duplicate' });
      const first = fresh[0];
      // Past a gap: pull the missing events, which usually brings these along too.
      if (first && first.seq > this.lastSeq + 1) {
        await this.pullLocked(first.seq);
        if (this.lastSeq >= first.seq) status = 'applied';
      }
      const next = fresh.filter((envelope) => envelope.seq > this.lastSeq);
      if (next.length > 0) {
        if (next[0]!.seq !== this.lastSeq + 1 || next.some((envelope, at) => envelope.seq !== next[0]!.seq + at)) {
          throw new AppError({ status: 503, code: 'events_missing', message: `Events after ${this.lastSeq} are missing and the event bus did not provide them` });
        }
        const changed = this.applyBatch(next);
        status = changed ? 'applied' : status === 'applied' ? 'applied' : 'ignored';
      }
      return { status, lastSeq: this.lastSeq, maxBatch: batchLimits.maxEvents };
    });
  }

  /** Calls `listener` right after each event that changed the state is committed; returns an unsubscribe function. */
  onApplied(listener: (event: EventEnvelope) => void): () => void {
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  /** Pulls and applies everything the bus has after `lastSeq` (on start, and to fill gaps). */
  catchUp(): Promise<void> {
    if (this.queuedCatchUp) return this.queuedCatchUp;
    const queued = this.exclusive(async () => {
      // Started: a catch-up asked for from now on may want events this pass has already read past.
      this.queuedCatchUp = undefined;
      if (this.storageFailure) throw this.storageFailure;
      await this.pullLocked(Number.POSITIVE_INFINITY);
    });
    this.queuedCatchUp = queued;
    queued.catch(() => {
      if (this.queuedCatchUp === queued) this.queuedCatchUp = undefined;
    });
    return queued;
  }

  /** Stops publishing reactions (the rest stays in the outbox table) and closes the database. */
  async close(): Promise<void> {
    // First, and outside the lock: the outbox may be handing the projection an event to adopt.
    await this.outbox.stop();
    await this.exclusive(
      () => {
        if (this.db.isOpen) this.db.close();
        return Promise.resolve();
      },
      { bounded: false },
    );
  }

  /** Records that the state cannot be stored: logged once, final (see the invariants). */
  private fail(error: unknown, doing: string): AppError {
    if (!this.storageFailure) {
      const { logger, lifecycle, dataDir } = this.options;
      this.storageFailure = new AppError({
        status: 503,
        code: 'state_store_failed',
        message: `The state database in ${dataDir} failed while ${doing} (${(error as Error).message}); nothing more is acknowledged until the service is restarted`,
        cause: error,
      });
      logger.error({ err: error, dataDir, lastSeq: this.lastSeq }, this.storageFailure.message);
      lifecycle?.markFailed(this.storageFailure.message);
    }
    return this.storageFailure;
  }

  private checkLog(offered: string | undefined): void {
    if (this.replaced) throw this.replaced;
    if (offered === undefined || offered === this.logIdValue) return;
    if (this.logIdValue === undefined) {
      // The first contact (or state from before logs had ids): this is the log we follow from now on.
      try {
        this.meta.set('log_id', offered);
      } catch (error) {
        throw this.fail(error, 'storing the log id');
      }
      this.logIdValue = offered;
      return;
    }
    this.replaced = new LogReplacedError(this.logIdValue, offered, this.options.dataDir);
    this.options.logger.error({ storedLogId: this.logIdValue, offeredLogId: offered, lastSeq: this.lastSeq }, this.replaced.message);
    throw this.replaced;
  }

  /**
   * Reads pages from the bus until `targetSeq` or the head. The next page is asked for before the
   * current one is applied, so the bus reads and sends while this process applies: a catch-up
   * costs the slower of the two per page, not their sum.
   */
  private async pullLocked(targetSeq: number): Promise<void> {
    const read = (after: number) => this.options.bus.readEvents(after, this.pageSize);
    let reading = read(this.lastSeq);
    while (this.lastSeq < targetSeq) {
      const { events, headSeq, logId } = await reading;
      this.checkLog(logId);
      const last = events.at(-1)?.seq ?? this.lastSeq;
      const more = events.length > 0 && last < headSeq && last < targetSeq;
      if (more) {
        reading = read(last);
        // Settled by the next turn of the loop; if applying fails first, its error is the one reported.
        reading.catch(() => undefined);
      }
      const next = events.filter((event) => event.seq > this.lastSeq);
      if (next.length > 0 && next[0]!.seq === this.lastSeq + 1) this.applyBatch(next.filter((event, at) => event.seq === next[0]!.seq + at));
      if (!more || this.lastSeq < last) break;
    }
  }

  /**
   * Applies consecutive events after `lastSeq` in one transaction; returns whether any changed the
   * state. An event that does not match its schema is refused (400) after the ones before it are
   * committed.
   */
  private applyBatch(envelopes: readonly DeliveryEnvelope[]): boolean {
    const { spec, logger } = this.options;
    const applied: EventEnvelope[] = [];
    const outcomes: Array<{ type: string; outcome: string }> = [];
    let reacted = false;
    let refused: AppError | undefined;
    let lastSeq = this.lastSeq;
    try {
      inTransaction(this.db, () => {
        for (const envelope of envelopes) {
          if ((eventTypes as readonly string[]).includes(envelope.type)) {
            const parsed = BlogEvent.safeParse({ type: envelope.type, data: envelope.data });
            if (!parsed.success) {
              logger.error({ seq: envelope.seq, id: envelope.id, type: envelope.type, issues: parsed.error.issues }, 'invalid event refused');
              refused = new AppError({ status: 400, code: 'invalid_event', message: `Event ${envelope.seq} (${envelope.type}) does not match its schema`, details: parsed.error.issues });
              break;
            }
            const event: EventEnvelope = { ...parsed.data, id: envelope.id, seq: envelope.seq };
            const reactions = spec.react?.(this.state, event) ?? [];
            const changed = spec.apply(this.state, event);
            this.outbox.add(reactions);
            reacted ||= reactions.length > 0;
            outcomes.push({ type: event.type, outcome: changed ? 'applied' : 'ignored' });
            if (changed) applied.push(event);
          } else {
            // A newer producer's event type: skip it rather than block the stream.
            outcomes.push({ type: 'unknown', outcome: 'ignored' });
          }
          lastSeq = envelope.seq;
        }
        this.meta.set('last_seq', lastSeq);
      });
    } catch (error) {
      throw this.fail(error, `storing events ${envelopes[0]!.seq}-${envelopes.at(-1)!.seq}`);
    }
    this.lastSeqValue = lastSeq;
    for (const outcome of outcomes) this.appliedTotal.inc(outcome);
    if (reacted) this.outbox.notify();
    for (const event of applied) for (const listener of this.appliedListeners) listener(event);
    if (refused) throw refused;
    return applied.length > 0;
  }

  private exclusive<T>(work: () => Promise<T>, { bounded = true } = {}): Promise<T> {
    if (bounded && this.waiting >= this.maxWaiting) {
      return Promise.reject(new AppError({ status: 503, code: 'state_busy', message: `${this.waiting} requests already wait for this service's state; try again in a moment` }));
    }
    this.waiting += 1;
    const result = this.lock.then(() => {
      this.waiting -= 1;
      return work();
    });
    this.lock = result.catch(() => undefined);
    return result;
  }
}
