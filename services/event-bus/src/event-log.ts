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
    if (this.failed) throw new AppError({ status: 503, code: 'event_log_failed', message: 'The event log can no longer be written; the bus must be restarted' });
    const id = request.id ?? randomUUID();
    const existingSeq = this.seqById.get(id);
    if (existingSeq !== undefined) return this.existing(existingSeq, request);

    const envelope = { id, seq: this.events.length + 1, type: request.type, data: request.data } as EventEnvelope;
    const json = JSON.stringify(envelope);
    const durable = this.file.append([json]).then(
      () => {
        if (envelope.seq > this.durableSeq) this.durableSeq = envelope.seq;
        this.appended.resolve();
        this.appended = Promise.withResolvers<void>();
      },
      (error: unknown) => {
        this.failed = true;
        throw new AppError({ status: 503, code: 'event_log_failed', message: 'The event could not be written to disk', cause: error });
      },
    );
    this.events.push({ id, json, durable });
    this.seqById.set(id, envelope.seq);
    await durable;
    return { envelope, created: true };
  }

  /** The JSON text of the events after `after`, at most `limit` of them, all durable. */
  read(after: number, limit = Number.POSITIVE_INFINITY): string[] {
    const end = Math.min(this.durableSeq, after + limit);
    return after >= end ? [] : this.events.slice(after, end).map((event) => event.json);
  }

  /** The JSON text of one durable event. */
  get(seq: number): string | undefined {
    return seq >= 1 && seq <= this.durableSeq ? this.events[seq - 1]?.json : undefined;
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

  private async existing(seq: number, request: PublishRequest): Promise<AppendResult> {
    const stored = this.events[seq - 1]!;
    await stored.durable;
    const envelope = JSON.parse(stored.json) as EventEnvelope;
    if (envelope.type !== request.type || JSON.stringify(envelope.data) !== JSON.stringify(request.data)) {
      throw new AppError({ status: 409, code: 'event_id_conflict', message: `Event id ${request.id} is already used by a different event (seq ${seq})` });
    }
    return { envelope, created: false };
  }
}
