import { backoffMs, DeliveryAck, Gauge, logIdHeader, signRequest, sleep, type Counter, type Logger, type Registry } from '@blog/common';
import { Agent, request } from 'undici';
import type { Subscriber } from './config.js';

export interface EndpointOptions {
  logger: Logger;
  /** event_bus_deliveries_total{subscriber, outcome} */
  deliveries: Counter<'subscriber' | 'outcome'>;
  timeoutMs: number;
  retryMaxDelayMs: number;
  /** EVENT_BUS_SECRET: every delivery is signed for its subscriber; unset sends them unsigned. */
  secret?: string | undefined;
  /** The log the events come from, sent with every delivery (`logIdHeader`). */
  logId?: string | undefined;
}

/**
 * One subscriber as the bus's delivery loops see it: its own connection pool (so subscribers behind
 * one host:port never wait for each other), signing, what it told us about batches, and the backoff
 * after failures. Whatever decides *which* events to send (a file cursor, a JetStream consumer) uses
 * this to send them.
 */
export class SubscriberEndpoint {
  /** Learned from the subscriber's answers; classic subscribers never ask for batches. */
  maxBatch = 1;
  private failures = 0;
  private readonly dispatcher: Agent;

  constructor(
    readonly subscriber: Subscriber,
    private readonly options: EndpointOptions,
  ) {
    // A loop sends one request at a time, so one kept-alive connection is all it needs.
    this.dispatcher = new Agent({ connections: 1, keepAliveTimeout: 4_000, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
  }

  /** Sends these envelopes (JSON, in order) in one request: one object, or an array for a batching subscriber. */
  async send(events: readonly string[], first: { seq: number; id: string }): Promise<DeliveryAck | undefined> {
    const { subscriber, options } = this;
    const body = this.maxBatch === 1 && events.length === 1 ? events[0]! : `[${events.join(',')}]`;
    const url = new URL(subscriber.url);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': first.id, 'x-event-seq': String(first.seq) };
    if (options.logId) headers[logIdHeader] = options.logId;
    if (options.secret) Object.assign(headers, signRequest(options.secret, { method: 'POST', target: `${url.pathname}${url.search}`, audience: subscriber.name, body }));
    const response = await request(url, { method: 'POST', headers, body, dispatcher: this.dispatcher, signal: AbortSignal.timeout(options.timeoutMs) });
    const text = await response.body.text();
    if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`${subscriber.url} answered ${response.statusCode}: ${text.slice(0, 200)}`);
    // Classic subscribers answer anything; ours say how far they are, and whether they take batches.
    const parsed = DeliveryAck.safeParse(safeJson(text));
    const ack = parsed.success ? parsed.data : undefined;
    this.maxBatch = ack?.maxBatch ?? 1;
    options.deliveries.inc({ subscriber: subscriber.name, outcome: 'ok' }, events.length);
    if (this.failures > 0) options.logger.info({ subscriber: subscriber.name, failures: this.failures }, 'subscriber is back');
    this.failures = 0;
    return ack;
  }

  /** Counts a failed delivery, logs it (the first and then one in ten), and waits out the backoff. */
  async failed(error: unknown, seq: number, signal: AbortSignal): Promise<void> {
    const { subscriber, options } = this;
    options.deliveries.inc({ subscriber: subscriber.name, outcome: 'failed' });
    const delayMs = backoffMs(this.failures, 100, options.retryMaxDelayMs);
    if (this.failures % 10 === 0) options.logger.warn({ subscriber: subscriber.name, seq, failures: this.failures + 1, retryInMs: delayMs, err: error }, 'delivery failed');
    this.failures += 1;
    await sleep(delayMs, signal);
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** event_bus_subscriber_lag{subscriber}: however the delivery keeps its progress, measured at scrape time. */
export function subscriberLagGauge(metrics: Registry, subscribers: readonly Subscriber[], lagOf: (name: string) => Promise<number | undefined> | number | undefined): void {
  new Gauge({
    name: 'event_bus_subscriber_lag',
    help: 'Events stored but not yet acknowledged by the subscriber',
    labelNames: ['subscriber'] as const,
    registers: [metrics],
    async collect() {
      for (const { name } of subscribers) {
        const lag = await lagOf(name);
        if (lag !== undefined) this.set({ subscriber: name }, lag);
      }
    },
  });
}
