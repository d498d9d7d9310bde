import { backoffMs, batchLimits, sleep, Counter, DeliveryAck, Gauge, signRequest, type Logger, type Registry } from '@blog/common';
import { Agent, request } from 'undici';
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
  /** EVENT_BUS_SECRET: every delivery is signed for its subscriber; unset sends them unsigned. */
  secret?: string | undefined;
}

/**
 * At-least-once delivery: one independent loop per subscriber sends the events in log order and
 * moves that subscriber's cursor only on a 2xx. A classic subscriber gets one event per request; one
 * whose answer asks for batches (`maxBatch`) gets everything that is waiting, up to that many, as an
 * array. A failing subscriber is retried with capped exponential backoff and never holds up the
 * others: each loop has its own connections.
 */
export class Delivery {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly deliveries: Counter<'subscriber' | 'outcome'>;
  /** One connection pool per subscriber: subscribers behind one host:port must not share (and wait for) connections. */
  private readonly dispatchers = new Map<string, Agent>();

  constructor(private readonly options: DeliveryOptions) {
    const { metrics, subscribers, cursors, log } = options;
    // A loop sends one request at a time, so one kept-alive connection each is all it needs.
    for (const { name } of subscribers) {
      this.dispatchers.set(name, new Agent({ connections: 1, keepAliveTimeout: 4_000, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs }));
    }
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
    await Promise.all([...this.dispatchers.values()].map((dispatcher) => dispatcher.close()));
  }

  private async deliverForever(subscriber: Subscriber): Promise<void> {
    const { log, cursors, logger } = this.options;
    const signal = this.stopping.signal;
    let failures = 0;
    // Learned from the subscriber's answers; classic subscribers never ask for batches.
    let maxBatch = 1;
    while (!signal.aborted) {
      const cursor = cursors.get(subscriber.name);
      if (log.durableSeq <= cursor) {
        await log.waitForEventAfter(cursor, signal);
        continue;
      }
      const events = log.read(cursor, maxBatch, batchLimits.maxBytes);
      const body = maxBatch === 1 ? events[0]! : `[${events.join(',')}]`;
      try {
        const ack = await this.send(subscriber, body, cursor + 1, log.idOf(cursor + 1));
        // The subscriber may already have more (it catches up by itself): skip what it has.
        cursors.advance(subscriber.name, Math.min(Math.max(cursor + events.length, ack?.lastSeq ?? 0), log.durableSeq));
        maxBatch = ack?.maxBatch ?? 1;
        this.deliveries.inc({ subscriber: subscriber.name, outcome: 'ok' }, events.length);
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

  private async send(subscriber: Subscriber, body: string, seq: number, id: string): Promise<DeliveryAck | undefined> {
    const url = new URL(subscriber.url);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': id, 'x-event-seq': String(seq) };
    const { secret } = this.options;
    if (secret) Object.assign(headers, signRequest(secret, { method: 'POST', target: `${url.pathname}${url.search}`, audience: subscriber.name, body }));
    const response = await request(url, { method: 'POST', headers, body, dispatcher: this.dispatchers.get(subscriber.name)!, signal: AbortSignal.timeout(this.options.timeoutMs) });
    const text = await response.body.text();
    if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`${subscriber.url} answered ${response.statusCode}: ${text.slice(0, 200)}`);
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
