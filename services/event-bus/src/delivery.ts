import { batchLimits, Counter, Gauge, sleep, type Logger, type Registry } from '@blog/common';
import type { Subscriber } from './config.js';
import type { EventStore } from './event-store.js';
import { SubscriberEndpoint, subscriberLagGauge } from './subscriber-endpoint.js';
import type { SubscriberCursors } from './subscriber-cursors.js';

export interface DeliveryOptions {
  store: EventStore;
  cursors: SubscriberCursors;
  subscribers: readonly Subscriber[];
  logger: Logger;
  metrics: Registry;
  timeoutMs: number;
  retryMaxDelayMs: number;
  cursorFlushMs: number;
  /** EVENT_BUS_SECRET: every delivery is signed for its subscriber; unset sends them unsigned. */
  secret?: string | undefined;
}

/** event_bus_deliveries_total, shared by both ways of delivering. */
export function deliveriesCounter(metrics: Registry): Counter<'subscriber' | 'outcome'> {
  return new Counter({ name: 'event_bus_deliveries_total', help: 'Events delivered (ok) and delivery attempts that failed, by subscriber', labelNames: ['subscriber', 'outcome'] as const, registers: [metrics] });
}

/**
 * At-least-once delivery from the embedded log: one independent loop per subscriber sends the
 * events in log order and moves that subscriber's cursor (saved in the database) only on a 2xx. A
 * classic subscriber gets one event per request; one whose answer asks for batches (`maxBatch`)
 * gets everything that is waiting, up to that many, as an array. A failing subscriber is retried
 * with capped exponential backoff and never holds up the others.
 */
export class Delivery {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly endpoints: SubscriberEndpoint[];

  constructor(private readonly options: DeliveryOptions) {
    const { metrics, subscribers, cursors, store, logger, timeoutMs, retryMaxDelayMs, secret } = options;
    const deliveries = deliveriesCounter(metrics);
    this.endpoints = subscribers.map((subscriber) => new SubscriberEndpoint(subscriber, { logger, deliveries, timeoutMs, retryMaxDelayMs, secret, logId: store.logId }));
    subscriberLagGauge(metrics, subscribers, (name) => store.index.visibleSeq - cursors.get(name));
    new Gauge({
      name: 'event_bus_subscriber_cursor',
      help: 'Sequence number of the last event the subscriber acknowledged',
      labelNames: ['subscriber'] as const,
      registers: [metrics],
      collect() {
        for (const { name } of subscribers) this.set({ subscriber: name }, cursors.get(name));
      },
    });
  }

  start(): void {
    this.loops = this.endpoints.map((endpoint) => this.deliverForever(endpoint));
    this.flushTimer = setInterval(() => void this.options.cursors.save().catch((error: unknown) => this.options.logger.error({ err: error }, 'saving cursors failed')), this.options.cursorFlushMs);
  }

  /** Lets in-flight deliveries finish (each is bounded by its timeout), then saves the cursors. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.flushTimer);
    await Promise.all(this.loops);
    await this.options.cursors.save();
    await Promise.all(this.endpoints.map((endpoint) => endpoint.close()));
  }

  private async deliverForever(endpoint: SubscriberEndpoint): Promise<void> {
    const { store, cursors } = this.options;
    const { index } = store;
    const { name } = endpoint.subscriber;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const cursor = cursors.get(name);
      if (index.visibleSeq <= cursor) {
        // A failed store wakes every waiter: do not spin while the process waits to be restarted.
        if (index.failed) await sleep(1_000, signal);
        else await index.waitForEventAfter(cursor, signal);
        continue;
      }
      try {
        // Near the head this comes from the index's cache; a subscriber far behind reads the store.
        const events = await store.read(cursor, endpoint.maxBatch, batchLimits.maxBytes);
        const first = events[0];
        if (!first) throw new Error(`the log returned nothing after seq ${cursor}, though it holds up to ${index.visibleSeq}`);
        const ack = await endpoint.send(events.map((event) => event.json), { seq: first.seq, id: first.id });
        // The subscriber may already have more (it catches up by itself): skip what it has.
        cursors.advance(name, Math.min(Math.max(cursor + events.length, ack?.lastSeq ?? 0), index.visibleSeq));
      } catch (error) {
        await endpoint.failed(error, cursor + 1, signal);
      }
    }
  }
}
