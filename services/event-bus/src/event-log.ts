import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { AppError, RecordLog, type EventEnvelope, type Logger, type PublishRequest } from '@blog/common';
import { EventIndex, idConflict, sameEvent, storeFailed } from './event-index.js';
import type { AppendResult, EventStore } from './event-store.js';

/**
 * The embedded log: `events.log` under DATA_DIR, one checksummed record per event, fdatasynced
 * (group commit) before anything is acknowledged or delivered, so nothing a subscriber applied can
 * vanish in a crash. One process is its only writer.
 */
export class EventLog implements EventStore {
  readonly index = new EventIndex();

  private constructor(private readonly file: RecordLog) {}

  static async open(dataDir: string, logger: Logger): Promise<EventLog> {
    const { log: file, records, truncatedBytes } = await RecordLog.open(path.join(dataDir, 'events.log'));
    if (truncatedBytes > 0) logger.warn({ truncatedBytes }, 'event log ended in a torn record from a crash; dropped it (it was never acknowledged)');
    const log = new EventLog(file);
    for (const json of records) {
      const envelope = JSON.parse(json) as EventEnvelope;
      if (envelope.seq !== log.index.length + 1) throw new Error(`events.log is out of order: record ${log.index.length + 1} has seq ${envelope.seq}`);
      log.index.add(envelope);
    }
    log.index.makeVisible(log.index.length);
    logger.info({ events: log.index.length }, 'event log loaded');
    return log;
  }

  async appendAll(requests: readonly PublishRequest[]): Promise<AppendResult[]> {
    const { index } = this;
    if (index.failed) throw storeFailed();
    const fresh = new Map<string, EventEnvelope>();
    const plan = requests.map((request): AppendResult => {
      const id = request.id ?? randomUUID();
      const seq = index.seqOf(id);
      if (seq !== undefined) return { envelope: index.sameEventAt(seq, request), created: false };
      const inBatch = fresh.get(id);
      if (inBatch) {
        if (!sameEvent(inBatch, request)) throw idConflict(id, 'earlier in the same batch');
        return { envelope: inBatch, created: false };
      }
      const envelope = { id, seq: index.length + fresh.size + 1, type: request.type, data: request.data } as EventEnvelope;
      fresh.set(id, envelope);
      return { envelope, created: true };
    });

    for (const envelope of fresh.values()) index.add(envelope);
    if (fresh.size > 0) {
      const lastSeq = index.length;
      try {
        await this.file.append([...fresh.values()].map((envelope) => index.jsonAt(envelope.seq)));
      } catch (error) {
        index.markFailed();
        throw new AppError({ status: 503, code: 'event_log_failed', message: 'The event could not be written to disk', cause: error });
      }
      index.makeVisible(lastSeq);
    }
    // A retried event is answered only once it is durable (it may still be on its way to disk).
    await index.untilVisible(Math.max(0, ...plan.map((step) => step.envelope.seq)));
    return plan;
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
