import { backoffMs, Counter, DeliveryAck, Gauge, type Logger, type Registry } from '@blog/common';
import type { Subscriber } from './config.js';
import type { EventLog } from './event-log.js';
import type { SubscriberCursors } from './subscriber-cursors.js';

export interface DeliveryOptions {
  log: EventLog;
  cursors: SubscriberCursors;
  subscribers: readonly Subscriber[];
  logger: Logger;
  metrics: Registry;
  timeoutMs: number;
  retryMaxDelayMs: number;
  cursorFlushMs: number;
}

/**
 * At-least-once delivery: one independent loop per subscriber sends the events in log order, one at
 * a time, and moves that subscriber's cursor only on a 2xx. A failing subscriber is retried with
 * capped exponential backoff and never holds up the others.
 */
export class Delivery {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly deliveries: Counter<'subscriber' | 'outcome'>;

  constructor(private readonly options: DeliveryOptions) {
    const { metrics, subscribers, cursors, log } = options;
    this.deliveries = new Counter({
      name: 'event_bus_deliveries_total',
      help: 'Delivery attempts by subscriber and outcome',
      labelNames: ['subscriber', 'outcome'] as const,
      registers: [metrics],
    });
    new Gauge({
      name: 'event_bus_subscriber_lag',
      help: 'Events stored but not yet acknowledged by the subscriber',
      labelNames: ['subscriber'] as const,
      registers: [metrics],
      collect() {
        for (const { name } of subscribers) this.set({ subscriber: name }, log.durableSeq - cursors.get(name));
      },
    });
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
    this.loops = this.options.subscribers.map((subscriber) => this.deliverForever(subscriber));
    this.flushTimer = setInterval(() => void this.options.cursors.save().catch((error: unknown) => this.options.logger.error({ err: error }, 'saving cursors failed')), this.options.cursorFlushMs);
  }

  /** Lets in-flight deliveries finish (each is bounded by its timeout), then saves the cursors. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.flushTimer);
    await Promise.all(this.loops);
    await this.options.cursors.save();
  }

  private async deliverForever(subscriber: Subscriber): Promise<void> {
    const { log, cursors, logger } = this.options;
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      const cursor = cursors.get(subscriber.name);
      const json = log.get(cursor + 1);
      if (json === undefined) {
        await log.waitForEventAfter(cursor, signal);
        continue;
      }
      try {
        const ack = await this.send(subscriber, json, cursor + 1, log.idOf(cursor + 1));
        // The subscriber may already have more (it catches up by itself): skip what it has.
        cursors.advance(subscriber.name, Math.min(Math.max(cursor + 1, ack?.lastSeq ?? 0), log.durableSeq));
        this.deliveries.inc({ subscriber: subscriber.name, outcome: 'ok' });
        if (failures > 0) logger.info({ subscriber: subscriber.name, failures }, 'subscriber is back');
        failures = 0;
      } catch (error) {
        this.deliveries.inc({ subscriber: subscriber.name, outcome: 'failed' });
        const delayMs = backoffMs(failures, 100, this.options.retryMaxDelayMs);
        // The first failure and then one in ten: a dead subscriber must not flood the logs.
        if (failures % 10 === 0) logger.warn({ subscriber: subscriber.name, seq: cursor + 1, failures: failures + 1, retryInMs: delayMs, err: error }, 'delivery failed');
        failures += 1;
        await sleep(delayMs, signal);
      }
    }
  }

  private async send(subscriber: Subscriber, json: string, seq: number, id: string): Promise<DeliveryAck | undefined> {
    const response = await fetch(subscriber.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': id, 'x-event-seq': String(seq) },
      body: json,
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${subscriber.url} answered ${response.status}: ${text.slice(0, 200)}`);
    // Classic subscribers answer anything; ours say how far they are.
    const ack = DeliveryAck.safeParse(safeJson(text));
    return ack.success ? ack.data : undefined;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
