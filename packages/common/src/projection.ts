import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { BusClient } from './bus-client.js';
import { AppError } from './errors.js';
import { batchLimits, BlogEvent, eventTypes, type DeliveryAck, type DeliveryEnvelope, type EventEnvelope, type PublishRequest } from './events.js';
import type { Logger } from './logging.js';
import { Outbox } from './outbox.js';
import { RecordLog, writeFileAtomic } from './record-log.js';

/**
 * What a service does with the event stream, as plain functions (see each service's `domain/`).
 * `apply` must be deterministic: the same events in the same order give the same state, which is
 * what lets a restart rebuild the state from a snapshot plus the journal.
 */
export interface ProjectionSpec<S> {
  initialState(): S;
  /** Applies one event to `state` in place; returns whether anything changed. */
  apply(state: S, event: EventEnvelope): boolean;
  /**
   * Events to publish because of this one, computed before it is applied and saved with it (see
   * Outbox). Their ids must be derived from the event's id so that a redelivery or a restart
   * publishes nothing new (the bus deduplicates by id).
   */
  react?(state: S, event: EventEnvelope): PublishRequest[];
  toSnapshot(state: S): unknown;
  fromSnapshot(snapshot: unknown): S;
}

export interface ProjectionOptions<S> {
  spec: ProjectionSpec<S>;
  dataDir: string;
  bus: BusClient;
  logger: Logger;
  metrics: Registry;
  /** Journal records after which the state is snapshotted and the journal emptied. */
  snapshotEvery?: number;
  /** Events asked of the bus per catch-up request. */
  pageSize?: number;
  /** How often the journal is fdatasynced (see below why not before every ack); default 200 ms. */
  journalSyncMs?: number;
}

interface SnapshotFile {
  lastSeq: number;
  state: unknown;
  /** Reactions the bus had not confirmed when the snapshot was taken. */
  outbox?: PublishRequest[];
}

/** A journal record: the event, and what it made this service publish. */
type JournalRecord = EventEnvelope & { reactions?: PublishRequest[] };

/**
 * A service's state, built only from the bus's log and kept durably under DATA_DIR.
 *
 * Every event is applied exactly once and in log order: a delivery at or below `lastSeq` is a
 * duplicate, a delivery past a gap first pulls the missing events from the bus. A delivery may be
 * one event or a batch. What changed the state (and the reactions it caused) is written to a local
 * journal before the delivery is acknowledged; the journal is folded into a snapshot now and then,
 * so a restart reads one snapshot plus a short journal and asks the bus only for what it missed.
 *
 * The journal is fdatasynced every `journalSyncMs`, not before each ack: the bus's log is the
 * durable truth, and a restart always pulls everything after the journal's last record. So a killed
 * process loses nothing (the OS has the writes), and a power cut costs only a re-pull of the
 * unsynced tail, whose reactions get the same ids again and are stored once by the bus.
 */
export class Projection<S> {
  state: S;
  lastSeq: number;
  private journalRecords: number;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly snapshotPath: string;
  private readonly snapshotEvery: number;
  private readonly pageSize: number;
  private readonly appliedTotal: Counter<'type' | 'outcome'>;
  private readonly appliedListeners = new Set<(event: EventEnvelope) => void>();
  private readonly outbox: Outbox;

  private constructor(
    private readonly options: ProjectionOptions<S>,
    private readonly journal: RecordLog,
    loaded: { state: S; lastSeq: number; journalRecords: number; outbox: PublishRequest[] },
  ) {
    this.state = loaded.state;
    this.outbox = new Outbox(options.bus, options.logger, loaded.outbox);
    this.lastSeq = loaded.lastSeq;
    this.journalRecords = loaded.journalRecords;
    this.snapshotPath = path.join(options.dataDir, 'snapshot.json');
    this.snapshotEvery = options.snapshotEvery ?? 10_000;
    this.pageSize = options.pageSize ?? 1_000;
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
    const outboxGauge: Gauge = new Gauge({
      name: 'projection_outbox_pending',
      help: 'Events published in reaction and not yet confirmed by the bus',
      registers: [options.metrics],
      collect: () => outboxGauge.set(this.outbox.pending.length),
    });
  }

  /** Loads the snapshot and replays the journal; does not talk to the bus yet (see `catchUp`). */
  static async open<S>(options: ProjectionOptions<S>): Promise<Projection<S>> {
    const { spec, dataDir, logger } = options;
    let state = spec.initialState();
    let lastSeq = 0;
    const outbox: PublishRequest[] = [];
    const snapshot = await readSnapshot(path.join(dataDir, 'snapshot.json'));
    if (snapshot) {
      state = spec.fromSnapshot(snapshot.state);
      lastSeq = snapshot.lastSeq;
      outbox.push(...(snapshot.outbox ?? []));
    }
    const { log, records, truncatedBytes } = await RecordLog.open(path.join(dataDir, 'journal.log'), { syncIntervalMs: options.journalSyncMs ?? 200 });
    if (truncatedBytes > 0) logger.warn({ truncatedBytes }, 'journal ended in a torn record from a crash; dropped it');
    for (const json of records) {
      const { reactions = [], ...event } = JSON.parse(json) as JournalRecord;
      // Records at or below the snapshot are left over from a crash between snapshot and truncation.
      if (event.seq <= lastSeq) continue;
      spec.apply(state, event);
      lastSeq = event.seq;
      // Maybe published already: the bus will recognise them.
      outbox.push(...reactions);
    }
    logger.info({ lastSeq, fromSnapshot: snapshot?.lastSeq ?? 0, journalRecords: records.length, outbox: outbox.length }, 'state loaded');
    return new Projection(options, log, { state, lastSeq, journalRecords: records.length, outbox });
  }

  /**
   * Handles what the bus pushed (one event or a batch, in log order), or an event this service just
   * published. The journal write is awaited outside the lock, so concurrent deliveries share one fsync.
   */
  async deliver(delivered: DeliveryEnvelope | readonly DeliveryEnvelope[]): Promise<DeliveryAck> {
    const envelopes = Array.isArray(delivered) ? (delivered as readonly DeliveryEnvelope[]) : [delivered as DeliveryEnvelope];
    const { ack, durable } = await this.exclusive(async () => {
      const durable: Promise<void>[] = [];
      let status: DeliveryAck['status'] = 'duplicate';
      const outcome = (next: DeliveryAck['status']) => {
        if (next === 'applied' || (next === 'ignored' && status === 'duplicate')) status = next;
      };
      for (const envelope of envelopes) {
        if (envelope.seq <= this.lastSeq) {
          this.appliedTotal.inc({ type: envelope.type, outcome: 'duplicate' });
          continue;
        }
        // Past a gap: pull the missing events, which usually brings this one along too.
        if (envelope.seq > this.lastSeq + 1) await this.pullLocked(envelope.seq);
        if (envelope.seq <= this.lastSeq) {
          outcome('applied');
          continue;
        }
        if (envelope.seq !== this.lastSeq + 1) {
          throw new AppError({
            status: 503,
            code: 'events_missing',
            message: `Events ${this.lastSeq + 1}..${envelope.seq - 1} are missing and the event bus did not provide them`,
          });
        }
        const result = await this.applyLocked(envelope);
        durable.push(result.durable);
        outcome(result.applied ? 'applied' : 'ignored');
      }
      // Everything up to lastSeq is durable once this delivery's records are (the journal is written in order).
      const ack: DeliveryAck = { status, lastSeq: this.lastSeq, maxBatch: batchLimits.maxEvents };
      return { ack, durable };
    });
    await Promise.all(durable);
    return ack;
  }

  /** Calls `listener` right after each event that changed the state; returns an unsubscribe function. */
  onApplied(listener: (event: EventEnvelope) => void): () => void {
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  /** Pulls and applies everything the bus has after `lastSeq` (on start, and to fill gaps). */
  catchUp(): Promise<void> {
    return this.exclusive(async () => {
      await this.pullLocked(Number.POSITIVE_INFINITY);
    });
  }

  /** Writes a snapshot (with any unpublished reactions) and closes the journal: the next start reads the snapshot alone. */
  close(): Promise<void> {
    return this.exclusive(async () => {
      await this.outbox.stop();
      if (this.journalRecords > 0 || this.outbox.pending.length > 0) await this.snapshotLocked();
      await this.journal.close();
    });
  }

  private async pullLocked(targetSeq: number): Promise<void> {
    const durable: Promise<void>[] = [];
    while (this.lastSeq < targetSeq) {
      const { events, headSeq } = await this.options.bus.readEvents(this.lastSeq, this.pageSize);
      for (const event of events) {
        if (event.seq !== this.lastSeq + 1) continue;
        durable.push((await this.applyLocked(event)).durable);
      }
      if (events.length === 0 || this.lastSeq >= headSeq) break;
    }
    await Promise.all(durable);
  }

  private async applyLocked(envelope: DeliveryEnvelope): Promise<{ applied: boolean; durable: Promise<void> }> {
    const { spec, logger } = this.options;
    if (!(eventTypes as readonly string[]).includes(envelope.type)) {
      // A newer producer's event type: skip it rather than block the stream.
      this.lastSeq = envelope.seq;
      this.appliedTotal.inc({ type: 'unknown', outcome: 'ignored' });
      return { applied: false, durable: Promise.resolve() };
    }
    const parsed = BlogEvent.safeParse({ type: envelope.type, data: envelope.data });
    if (!parsed.success) {
      logger.error({ seq: envelope.seq, id: envelope.id, type: envelope.type, issues: parsed.error.issues }, 'invalid event refused');
      throw new AppError({ status: 400, code: 'invalid_event', message: `Event ${envelope.seq} (${envelope.type}) does not match its schema`, details: parsed.error.issues });
    }
    const event: EventEnvelope = { ...parsed.data, id: envelope.id, seq: envelope.seq };
    const reactions = spec.react?.(this.state, event) ?? [];
    const changed = spec.apply(this.state, event);
    this.lastSeq = event.seq;
    this.appliedTotal.inc({ type: event.type, outcome: changed ? 'applied' : 'ignored' });
    if (changed) for (const listener of this.appliedListeners) listener(event);
    if (!changed && reactions.length === 0) return { applied: false, durable: Promise.resolve() };
    // Sent at once; the journal record keeps them until the bus confirms, across crashes.
    this.outbox.add(reactions);
    const record: JournalRecord = reactions.length > 0 ? { ...event, reactions } : event;
    const durable = this.journal.append([JSON.stringify(record)]);
    // A delivery that fails later in its batch never awaits this: its failure is reported there.
    durable.catch(() => undefined);
    this.journalRecords += 1;
    if (this.journalRecords >= this.snapshotEvery) await this.snapshotLocked();
    return { applied: true, durable };
  }

  private async snapshotLocked(): Promise<void> {
    const snapshot: SnapshotFile = { lastSeq: this.lastSeq, state: this.options.spec.toSnapshot(this.state), outbox: [...this.outbox.pending] };
    await writeFileAtomic(this.snapshotPath, JSON.stringify(snapshot));
    await this.journal.clear();
    this.journalRecords = 0;
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.lock.then(work);
    this.lock = result.catch(() => undefined);
    return result;
  }
}

async function readSnapshot(filePath: string): Promise<SnapshotFile | undefined> {
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const snapshot = JSON.parse(text) as SnapshotFile;
  if (typeof snapshot.lastSeq !== 'number' || snapshot.lastSeq < 0) throw new Error(`${filePath} has no valid lastSeq`);
  return snapshot;
}
