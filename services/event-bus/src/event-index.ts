import { AppError, type EventEnvelope, type PublishRequest } from '@blog/common';
import type { StoredEvent } from './event-store.js';

export interface TailCacheLimits {
  /** At most this many of the newest events are kept in memory... */
  maxEvents: number;
  /** ...and at most this many bytes of their JSON. */
  maxBytes: number;
}

export const defaultTailCacheLimits: TailCacheLimits = { maxEvents: 4_096, maxBytes: 4 * 1024 * 1024 };

/**
 * What the bus keeps in memory about its log, whichever store keeps the log itself: how far it is
 * durable (`visibleSeq`, the only part readers and deliveries may see), who waits for more, and a
 * cache of the newest events, bounded in count and bytes. Live delivery and long polls read from
 * the cache; a subscriber catching up from further back reads from the store.
 */
export class EventIndex {
  private changed = Promise.withResolvers<void>();
  private wakeScheduled = false;
  /** The newest events, consecutive, oldest first. */
  private tail: StoredEvent[] = [];
  private tailStart = 0;
  private tailBytes = 0;
  /** The highest sequence that is durable, and so may be read and delivered. */
  visibleSeq = 0;
  /** Set when the store can no longer be trusted: waiters wake up and callers get 503. */
  failed = false;

  constructor(private readonly limits: TailCacheLimits = defaultTailCacheLimits) {}

  /**
   * Keeps these events (consecutive, in order) as the newest ones. Events that do not follow the
   * cached ones start the cache again: it always holds one run without gaps.
   */
  remember(events: readonly StoredEvent[]): void {
    for (const event of events) {
      const cachedUpTo = this.tailStart + this.tail.length - 1;
      if (this.tail.length > 0 && event.seq <= cachedUpTo) continue;
      if (this.tail.length > 0 && event.seq !== cachedUpTo + 1) this.forget();
      // Set as soon as the run starts: the next event of this same call is checked against it.
      if (this.tail.length === 0) this.tailStart = event.seq;
      this.tail.push(event);
      this.tailBytes += event.json.length;
    }
    this.evict();
  }

  /**
   * The page after `after` from the cache, or undefined when the cache does not hold all of it (it
   * starts later, or ends before what is visible): then the caller reads the store.
   */
  cached(after: number, limit: number, maxBytes = Number.POSITIVE_INFINITY): StoredEvent[] | undefined {
    if (this.tail.length === 0 || after + 1 < this.tailStart) return undefined;
    const end = Math.min(this.visibleSeq, after + limit);
    const page: StoredEvent[] = [];
    let bytes = 0;
    for (let seq = after + 1; seq <= end; seq += 1) {
      const event = this.tail[seq - this.tailStart];
      if (!event) return undefined;
      bytes += event.json.length + 1;
      if (page.length > 0 && bytes > maxBytes) break;
      page.push(event);
    }
    return page;
  }

  makeVisible(seq: number): void {
    if (seq <= this.visibleSeq) return;
    this.visibleSeq = seq;
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

  private evict(): void {
    let drop = 0;
    while (this.tail.length - drop > 1 && (this.tail.length - drop > this.limits.maxEvents || this.tailBytes > this.limits.maxBytes)) {
      this.tailBytes -= this.tail[drop]!.json.length;
      drop += 1;
    }
    if (drop === 0) return;
    this.tail = this.tail.slice(drop);
    this.tailStart = this.tail[0]!.seq;
  }

  private forget(): void {
    this.tail = [];
    this.tailBytes = 0;
  }

  private wake(): void {
    this.changed.resolve();
    this.changed = Promise.withResolvers<void>();
  }
}

export function sameEvent(stored: { type: string; data: unknown }, request: PublishRequest): boolean {
  return stored.type === request.type && JSON.stringify(stored.data) === JSON.stringify(request.data);
}

/**
 * The answer to an id reused for a different event. When the event under that id is durable it is
 * in `details.stored`: a producer whose ids are derived from a cause learns what the log already
 * says (see the Outbox in @blog/common), without reading the log.
 */
export function idConflict(id: string, where: string, stored?: EventEnvelope): AppError {
  return new AppError({
    status: 409,
    code: 'event_id_conflict',
    message: `Event id ${id} is already used by a different event (${where})`,
    details: { id, ...(stored ? { stored: { id: stored.id, seq: stored.seq, type: stored.type, data: stored.data } } : {}) },
  });
}

export const storeFailed = () => new AppError({ status: 503, code: 'event_log_failed', message: 'The event log can no longer be written; the bus must be restarted' });
