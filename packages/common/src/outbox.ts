import type { BusClient } from './bus-client.js';
import { batchLimits, type PublishRequest } from './events.js';
import { backoffMs, sleep } from './backoff.js';
import type { Logger } from './logging.js';

/**
 * Events a service publishes in reaction to the log (moderation's verdicts, comments' updates).
 * They are saved with the event that caused them (journal, snapshot) before that event is
 * acknowledged, and published from here in order, in batches, retried until the bus has them: a
 * crash or a bus outage delays a reaction but never loses it. Their ids are derived from the cause,
 * so publishing one again (after a restart) is recognised by the bus and stored once.
 */
export class Outbox {
  private readonly queue: PublishRequest[];
  private wake = Promise.withResolvers<void>();
  private readonly stopping = new AbortController();
  private readonly pump: Promise<void>;

  constructor(
    private readonly bus: BusClient,
    private readonly logger: Logger,
    pending: readonly PublishRequest[] = [],
  ) {
    this.queue = [...pending];
    this.pump = this.publishForever();
  }

  /** Everything not yet confirmed by the bus, oldest first (what a snapshot must keep). */
  get pending(): readonly PublishRequest[] {
    return this.queue;
  }

  add(events: readonly PublishRequest[]): void {
    if (events.length === 0) return;
    this.queue.push(...events);
    this.wake.resolve();
  }

  /** Stops after the batch under way (bounded by the bus client's timeout); the rest stays pending. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake.resolve();
    await this.pump;
  }

  private async publishForever(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      if (this.queue.length === 0) {
        await this.wake.promise;
        this.wake = Promise.withResolvers<void>();
        continue;
      }
      const batch = this.queue.slice(0, batchLimits.maxEvents);
      try {
        await this.bus.publishAll(batch);
        this.queue.splice(0, batch.length);
        failures = 0;
      } catch (error) {
        const delayMs = backoffMs(failures, 100, 5_000);
        if (failures % 10 === 0) this.logger.warn({ error: (error as Error).message, pending: this.queue.length, retryInMs: delayMs }, 'publishing reactions failed; retrying');
        failures += 1;
        await sleep(delayMs, this.stopping.signal);
      }
    }
  }
}
