import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { AppError, RecordLog, type EventEnvelope, type Logger, type PublishRequest } from '@blog/common';

interface StoredEvent {
  id: string;
  /** The envelope exactly as stored and as sent to subscribers. */
  json: string;
  durable: Promise<void>;
}

export interface AppendResult {
  envelope: EventEnvelope;
  /** false when an event with this id was already in the log (a producer's retry). */
  created: boolean;
}

/**
 * The bus's source of truth: every event ever published, numbered 1, 2, 3... in the order it was
 * accepted. Readers only ever see events that are already on disk (`durableSeq`), so nothing a
 * subscriber applied can vanish in a crash.
 */
export class EventLog {
  private readonly events: StoredEvent[] = [];
  private readonly seqById = new Map<string, number>();
  private appended = Promise.withResolvers<void>();
  durableSeq = 0;
  failed = false;

  private constructor(private readonly file: RecordLog) {}

  static async open(dataDir: string, logger: Logger): Promise<EventLog> {
    const { log: file, records, truncatedBytes } = await RecordLog.open(path.join(dataDir, 'events.log'));
    if (truncatedBytes > 0) logger.warn({ truncatedBytes }, 'event log ended in a torn record from a crash; dropped it (it was never acknowledged)');
    const log = new EventLog(file);
    for (const json of records) {
      const { id, seq } = JSON.parse(json) as EventEnvelope;
      if (seq !== log.events.length + 1) throw new Error(`events.log is out of order: record ${log.events.length + 1} has seq ${seq}`);
      log.events.push({ id, json, durable: Promise.resolve() });
      log.seqById.set(id, seq);
    }
    log.durableSeq = log.events.length;
    logger.info({ events: log.durableSeq }, 'event log loaded');
    return log;
  }

  /** Numbers and stores an event; resolves once it is on disk. */
  async append(request: PublishRequest): Promise<AppendResult> {
    return (await this.appendAll([request]))[0]!;
  }

  /**
   * Numbers and stores events in the given order, with one write; resolves once all are on disk.
   * An id already in the log (a producer's retry) gets the stored event back; an id reused for a
   * different event refuses the whole batch, before anything is stored.
   */
  async appendAll(requests: readonly PublishRequest[]): Promise<AppendResult[]> {
    if (this.failed) throw new AppError({ status: 503, code: 'event_log_failed', message: 'The event log can no longer be written; the bus must be restarted' });
    const fresh = new Map<string, EventEnvelope>();
    const plan = requests.map((request): AppendResult & { durable: Promise<void> | undefined } => {
      const id = request.id ?? randomUUID();
      const seq = this.seqById.get(id);
      if (seq !== undefined) return { ...this.checkSame(seq, request), created: false };
      const inBatch = fresh.get(id);
      if (inBatch) {
        if (!sameEvent(inBatch, request)) throw conflict(id, 'earlier in the same batch');
        return { envelope: inBatch, created: false, durable: undefined };
      }
      const envelope = { id, seq: 0, type: request.type, data: request.data } as EventEnvelope;
      fresh.set(id, envelope);
      return { envelope, created: true, durable: undefined };
    });

    const jsons: string[] = [];
    for (const envelope of fresh.values()) {
      envelope.seq = this.events.length + 1;
      const json = JSON.stringify(envelope);
      jsons.push(json);
      this.events.push({ id: envelope.id, json, durable: Promise.resolve() });
      this.seqById.set(envelope.id, envelope.seq);
    }
    if (jsons.length > 0) {
      const lastSeq = this.events.length;
      const durable = this.file.append(jsons).then(
        () => {
          if (lastSeq > this.durableSeq) this.durableSeq = lastSeq;
          this.appended.resolve();
          this.appended = Promise.withResolvers<void>();
        },
        (error: unknown) => {
          this.failed = true;
          throw new AppError({ status: 503, code: 'event_log_failed', message: 'The event could not be written to disk', cause: error });
        },
      );
      for (let seq = lastSeq - jsons.length + 1; seq <= lastSeq; seq += 1) this.events[seq - 1]!.durable = durable;
      await durable;
    }
    // A retried event is answered only once it is durable (it may still be on its way to disk).
    await Promise.all(plan.flatMap((step) => (step.durable ? [step.durable] : [])));
    return plan.map(({ envelope, created }) => ({ envelope, created }));
  }

  /** The JSON text of the durable events after `after`: at most `limit`, and `maxBytes` unless the first alone is more. */
  read(after: number, limit = Number.POSITIVE_INFINITY, maxBytes = Number.POSITIVE_INFINITY): string[] {
    const end = Math.min(this.durableSeq, after + limit);
    const page: string[] = [];
    let bytes = 0;
    for (let seq = after + 1; seq <= end; seq += 1) {
      const { json } = this.events[seq - 1]!;
      bytes += json.length + 1;
      if (page.length > 0 && bytes > maxBytes) break;
      page.push(json);
    }
    return page;
  }

  idOf(seq: number): string {
    return this.events[seq - 1]?.id ?? '';
  }

  /** Resolves when an event after `seq` is durable, or when `signal` aborts. */
  async waitForEventAfter(seq: number, signal: AbortSignal): Promise<void> {
    if (this.durableSeq > seq || signal.aborted) return;
    const aborted = Promise.withResolvers<void>();
    const onAbort = () => aborted.resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (this.durableSeq <= seq && !signal.aborted) await Promise.race([this.appended.promise, aborted.promise]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  close(): Promise<void> {
    return this.file.close();
  }

  /** The stored event with this seq (and when it is durable), if it is the same event as `request`. */
  private checkSame(seq: number, request: PublishRequest): { envelope: EventEnvelope; durable: Promise<void> } {
    const stored = this.events[seq - 1]!;
    const envelope = JSON.parse(stored.json) as EventEnvelope;
    if (!sameEvent(envelope, request)) throw conflict(envelope.id, `seq ${seq}`);
    return { envelope, durable: stored.durable };
  }
}

function sameEvent(stored: EventEnvelope, request: PublishRequest): boolean {
  return stored.type === request.type && JSON.stringify(stored.data) === JSON.stringify(request.data);
}

function conflict(id: string, where: string): AppError {
  return new AppError({ status: 409, code: 'event_id_conflict', message: `Event id ${id} is already used by a different event (${where})` });
}
