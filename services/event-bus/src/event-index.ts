import { AppError, type EventEnvelope, type PublishRequest } from '@blog/common';

/**
 * The bus's in-memory view of its log, whichever store keeps it (the file or JetStream): every
 * event's envelope as JSON in sequence order, and which sequence each id has. Readers only see up to
 * `visibleSeq`: what the store has made durable.
 */
export class EventIndex {
  private readonly jsons: string[] = [];
  private readonly ids: string[] = [];
  private readonly seqById = new Map<string, number>();
  private changed = Promise.withResolvers<void>();
  private wakeScheduled = false;
  /** The highest sequence that is durable, and so may be read and delivered. */
  visibleSeq = 0;
  /** Set when the store can no longer be trusted: waiters wake up and callers get 503. */
  failed = false;

  /** How many events are numbered (durable or on their way to disk). */
  get length(): number {
    return this.jsons.length;
  }

  /** Numbers the next event; the caller makes it visible once durable. */
  add(envelope: EventEnvelope): void {
    if (envelope.seq !== this.jsons.length + 1) throw new Error(`event ${envelope.id} has seq ${envelope.seq}, expected ${this.jsons.length + 1}`);
    this.jsons.push(JSON.stringify({ id: envelope.id, seq: envelope.seq, type: envelope.type, data: envelope.data }));
    this.ids.push(envelope.id);
    this.seqById.set(envelope.id, envelope.seq);
  }

  makeVisible(seq: number): void {
    if (seq <= this.visibleSeq) return;
    this.visibleSeq = Math.min(seq, this.jsons.length);
    // Waiters (delivery loops, long polls) wake on the next turn of the event loop, not right now:
    // the publisher gets its answer first, and the events made visible meanwhile go out together.
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wake();
    });
  }

  markFailed(): void {
    this.failed = true;
    this.wake();
  }

  seqOf(id: string): number | undefined {
    return this.seqById.get(id);
  }

  idOf(seq: number): string {
    return this.ids[seq - 1] ?? '';
  }

  /** The envelope exactly as stored and sent to subscribers (visible or not yet). */
  jsonAt(seq: number): string {
    return this.jsons[seq - 1]!;
  }

  envelopeAt(seq: number): EventEnvelope {
    return JSON.parse(this.jsons[seq - 1]!) as EventEnvelope;
  }

  /** The stored event with this seq, if it is the same event as `request`; 409 otherwise. */
  sameEventAt(seq: number, request: PublishRequest): EventEnvelope {
    const envelope = this.envelopeAt(seq);
    if (!sameEvent(envelope, request)) throw idConflict(envelope.id, `seq ${seq}`);
    return envelope;
  }

  /** The JSON of the visible events after `after`: at most `limit`, and `maxBytes` unless the first alone is more. */
  read(after: number, limit = Number.POSITIVE_INFINITY, maxBytes = Number.POSITIVE_INFINITY): string[] {
    const end = Math.min(this.visibleSeq, after + limit);
    const page: string[] = [];
    let bytes = 0;
    for (let seq = after + 1; seq <= end; seq += 1) {
      const json = this.jsons[seq - 1]!;
      bytes += json.length + 1;
      if (page.length > 0 && bytes > maxBytes) break;
      page.push(json);
    }
    return page;
  }

  /** Resolves when an event after `seq` is visible, the store failed, or `signal` aborts. */
  async waitForEventAfter(seq: number, signal: AbortSignal): Promise<void> {
    if (this.visibleSeq > seq || this.failed || signal.aborted) return;
    const aborted = Promise.withResolvers<void>();
    const onAbort = () => aborted.resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (this.visibleSeq <= seq && !this.failed && !signal.aborted) await Promise.race([this.changed.promise, aborted.promise]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Resolves once `seq` is visible; fails if the store fails first. */
  async untilVisible(seq: number): Promise<void> {
    const never = new AbortController().signal;
    while (this.visibleSeq < seq) {
      if (this.failed) throw storeFailed();
      await this.waitForEventAfter(this.visibleSeq, never);
    }
  }

  private wake(): void {
    this.changed.resolve();
    this.changed = Promise.withResolvers<void>();
  }
}

export function sameEvent(stored: { type: string; data: unknown }, request: PublishRequest): boolean {
  return stored.type === request.type && JSON.stringify(stored.data) === JSON.stringify(request.data);
}

export function idConflict(id: string, where: string): AppError {
  return new AppError({ status: 409, code: 'event_id_conflict', message: `Event id ${id} is already used by a different event (${where})` });
}

export const storeFailed = () => new AppError({ status: 503, code: 'event_log_failed', message: 'The event log can no longer be written; the bus must be restarted' });
