import { batchLimits, sleep, type Logger, type Registry } from '@blog/common';
import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Subscriber } from './config.js';
import { deliveriesCounter } from './delivery.js';
import type { JetStreamStore } from './jetstream-store.js';
import { SubscriberEndpoint, subscriberLagGauge } from './subscriber-endpoint.js';

export interface JetStreamDeliveryOptions {
  store: JetStreamStore;
  subscribers: readonly Subscriber[];
  logger: Logger;
  metrics: Registry;
  timeoutMs: number;
  retryMaxDelayMs: number;
  secret?: string | undefined;
}

/** How long one pull request waits on the server before the client renews it. */
const PULL_EXPIRES_MS = 5_000;
/** JetStream bounds a pull by count or by bytes, not both: 250 of the largest events fit the subscribers' body limit. */
const MAX_BATCH = 250;

export const durableName = (subscriber: string) => `deliver-${subscriber}`;

/**
 * At-least-once delivery from JetStream: each subscriber's progress is a durable pull consumer of
 * the stream, shared by every bus replica. A replica fetches what is waiting (up to what the
 * subscriber takes in one request), delivers it, and acknowledges it in JetStream only after the
 * subscriber's 2xx; a failure, or a replica that dies mid-delivery, makes JetStream hand the events
 * out again. Our subscribers apply each event once and in order whichever replica sends it (they
 * number-check and pull gaps); a classic subscriber behind two replicas may see two batches cross.
 */
export class JetStreamDelivery {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly endpoints: SubscriberEndpoint[];

  constructor(private readonly options: JetStreamDeliveryOptions) {
    const { metrics, subscribers, logger, timeoutMs, retryMaxDelayMs, secret, store } = options;
    const deliveries = deliveriesCounter(metrics);
    this.endpoints = subscribers.map((subscriber) => new SubscriberEndpoint(subscriber, { logger, deliveries, timeoutMs, retryMaxDelayMs, secret, logId: store.logId }));
    subscriberLagGauge(metrics, subscribers, async (name) => {
      const info = await store.jsm.consumers.info(store.stream, durableName(name)).catch(() => undefined);
      return info && info.num_pending + info.num_ack_pending;
    });
  }

  /** Makes sure every subscriber has its durable consumer (from the first event), then starts the loops. */
  async start(): Promise<void> {
    const { store } = this.options;
    for (const { name } of this.options.subscribers) {
      const config = {
        durable_name: durableName(name),
        ack_policy: AckPolicy.All,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: batchLimits.maxEvents,
        // Longer than a delivery may take, so that only a dead replica's batch is handed out again.
        ack_wait: nanos(this.options.timeoutMs + 10_000),
      };
      await store.jsm.consumers.add(store.stream, config).catch(async (error: unknown) => {
        if (!(await store.jsm.consumers.info(store.stream, config.durable_name).catch(() => undefined))) throw error;
      });
    }
    this.loops = this.endpoints.map((endpoint) => this.deliverForever(endpoint));
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.loops);
    await Promise.all(this.endpoints.map((endpoint) => endpoint.close()));
  }

  /**
   * One subscriber: a continuous pull (consume) fills a buffer, and whatever is in it when the
   * subscriber is free goes out as one request, so nothing waits for a batch to fill up. A failed
   * batch is retried as it is (order kept), telling JetStream it is still being worked on.
   */
  private async deliverForever(endpoint: SubscriberEndpoint): Promise<void> {
    const { store } = this.options;
    const signal = this.stopping.signal;
    const buffer: JsMsg[] = [];
    let lastDelivered = 0;
    let arrived = Promise.withResolvers<void>();
    signal.addEventListener('abort', () => arrived.resolve(), { once: true });
    const pulling = this.pullForever(endpoint, (message) => {
      buffer.push(message);
      arrived.resolve();
    });
    while (!signal.aborted) {
      if (buffer.length === 0) {
        await arrived.promise;
        arrived = Promise.withResolvers<void>();
        continue;
      }
      // A redelivery of what this loop already delivered (JetStream gave up waiting for its ack) is skipped.
      const messages = buffer.splice(0, Math.min(endpoint.maxBatch, MAX_BATCH)).filter((message) => message.seq > lastDelivered);
      if (messages.length === 0) continue;
      // The rest of the buffer waits behind this batch: keep JetStream from handing it out again meanwhile.
      for (const waiting of buffer) waiting.working();
      // A dead letter goes out as the DeadLetter event in its place: the subscriber skips it and stays contiguous.
      const events = messages.map((message) => store.eventOf(message.seq, message.string()));
      const jsons = events.map((event) => event.json);
      const first = events[0]!;
      for (let delivered = false; !delivered && !signal.aborted; ) {
        try {
          await endpoint.send(jsons, { seq: first.seq, id: first.id });
          // AckPolicy.All: acknowledging the last acknowledges the whole batch.
          messages.at(-1)!.ack();
          lastDelivered = messages.at(-1)!.seq;
          delivered = true;
        } catch (error) {
          for (const message of messages) message.working();
          await endpoint.failed(error, first.seq, signal);
        }
      }
    }
    await pulling;
  }

  /** Keeps pulling the subscriber's durable consumer, starting again whenever JetStream went away. */
  private async pullForever(endpoint: SubscriberEndpoint, onMessage: (message: JsMsg) => void): Promise<void> {
    const { store, logger } = this.options;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      try {
        const consumer = await store.js.consumers.get(store.stream, durableName(endpoint.subscriber.name));
        const messages = await consumer.consume({ max_messages: MAX_BATCH, expires: PULL_EXPIRES_MS });
        const stop = () => void messages.stop();
        signal.addEventListener('abort', stop, { once: true });
        for await (const message of messages) onMessage(message);
        signal.removeEventListener('abort', stop);
      } catch (error) {
        if (!signal.aborted) logger.warn({ err: error, subscriber: endpoint.subscriber.name }, 'pulling from JetStream failed; retrying');
      }
      await sleep(500, signal);
    }
  }
}
