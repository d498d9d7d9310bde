import { randomUUID } from 'node:crypto';
import { AppError, sleep, type EventEnvelope, type Logger, type PublishRequest } from '@blog/common';
import { DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { EventIndex, idConflict, sameEvent } from './event-index.js';
import type { AppendResult, EventStore } from './event-store.js';

export interface JetStreamStoreOptions {
  servers: string[];
  /** The stream's name; its subject is `<stream>.events`. */
  stream: string;
  /** How many JetStream servers keep each event (1 on one machine, 3 in the cluster). */
  replicas: number;
  /** Publishing gives up after this long with a 503. */
  timeoutMs: number;
  logger: Logger;
}

/** What a message of the stream carries; its sequence number in the stream is the event's `seq`. */
interface StoredMessage {
  id: string;
  type: string;
  data: unknown;
}

/** JetStream remembers message ids this long to drop a retried publish (after that, our index does). */
const DUPLICATE_WINDOW_MS = 10 * 60_000;

const unavailable = (message: string, cause?: unknown) => new AppError({ status: 503, code: 'event_store_unavailable', message, cause });

/**
 * The log kept in a JetStream stream instead of a local file: the bus becomes a stateless front and
 * can run as several replicas. A publish is acknowledged once JetStream has stored the event (with
 * the event id as its message id, which drops a producer's retry); the stream's sequence numbers
 * are the events' `seq`. Each replica follows the stream with an ordered consumer into the same
 * in-memory index the file log uses, so reading and long polls work the same.
 */
export class JetStreamStore implements EventStore {
  readonly index = new EventIndex();
  private readonly following: Promise<void>;

  private constructor(
    readonly connection: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly options: JetStreamStoreOptions,
  ) {
    this.following = this.follow();
  }

  get stream(): string {
    return this.options.stream;
  }

  get subject(): string {
    return `${this.options.stream}.events`;
  }

  static async open(options: JetStreamStoreOptions): Promise<JetStreamStore> {
    const { servers, stream, replicas, timeoutMs, logger } = options;
    // Waits for a server that is not up yet (a cluster starting with the bus), and reconnects
    // forever: a restarted JetStream server is found again, and following the stream resumes.
    const connection = await connect({ servers, name: 'event-bus', waitOnFirstConnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: timeoutMs });
    const jsm = await jetstreamManager(connection, { timeout: timeoutMs });
    const existing = await jsm.streams.info(stream).catch(() => undefined);
    if (!existing) {
      await jsm.streams
        .add({ name: stream, subjects: [`${stream}.events`], storage: StorageType.File, num_replicas: replicas, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old, duplicate_window: nanos(DUPLICATE_WINDOW_MS) })
        // Another replica may have created it a moment ago.
        .catch(async (error: unknown) => {
          if (!(await jsm.streams.info(stream).catch(() => undefined))) throw error;
        });
    }
    const head = (await jsm.streams.info(stream)).state.last_seq;
    const store = new JetStreamStore(connection, jetstream(connection, { timeout: timeoutMs }), jsm, options);
    await store.index.untilVisible(head);
    logger.info({ stream, events: head, servers }, 'JetStream stream loaded');
    return store;
  }

  async appendAll(requests: readonly PublishRequest[]): Promise<AppendResult[]> {
    const { index } = this;
    const fresh = new Map<string, PublishRequest & { id: string }>();
    const plan = requests.map((request) => {
      const id = request.id ?? randomUUID();
      const seq = index.seqOf(id);
      if (seq !== undefined) return { request, id, known: index.sameEventAt(seq, request) };
      const inBatch = fresh.get(id);
      if (inBatch && !sameEvent(inBatch, request)) throw idConflict(id, 'earlier in the same batch');
      fresh.set(id, { ...request, id });
      return { request, id, known: undefined };
    });

    // Sent in order on one connection: JetStream stores them in this order.
    const acks = new Map<string, { seq: number; duplicate: boolean }>();
    try {
      const sent = [...fresh.values()].map((event) =>
        this.js.publish(this.subject, JSON.stringify({ id: event.id, type: event.type, data: event.data } satisfies StoredMessage), { msgID: event.id, expect: { streamName: this.options.stream } }),
      );
      const answers = await Promise.all(sent);
      [...fresh.keys()].forEach((id, at) => acks.set(id, answers[at]!));
    } catch (error) {
      throw unavailable(`JetStream did not confirm the event: ${(error as Error).message}`, error);
    }
    const highest = Math.max(0, ...[...acks.values()].map((ack) => ack.seq), ...plan.map((step) => step.known?.seq ?? 0));
    await this.untilIndexed(highest);
    return plan.map(({ request, id, known }) => {
      if (known) return { envelope: known, created: false };
      const ack = acks.get(id)!;
      // A duplicate means another replica (or an earlier try) stored this id: it must be the same event.
      return { envelope: index.sameEventAt(ack.seq, request), created: !ack.duplicate };
    });
  }

  async close(): Promise<void> {
    await this.connection.drain().catch(() => undefined);
    await this.following;
  }

  /**
   * Feeds the index from the stream, in order, until closed. An ordered consumer resumes by itself
   * after a short outage; when it gives up (a JetStream restart), a new one starts after the last
   * event indexed.
   */
  private async follow(): Promise<void> {
    const { logger, stream } = this.options;
    while (!this.connection.isClosed()) {
      try {
        const consumer = await this.js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.index.length + 1 });
        const messages = await consumer.consume();
        for await (const message of messages) {
          const { id, type, data } = message.json<StoredMessage>();
          if (message.seq <= this.index.length) continue;
          if (message.seq !== this.index.length + 1) {
            logger.fatal({ seq: message.seq, expected: this.index.length + 1 }, 'the JetStream stream has a gap (were messages deleted?); the bus cannot number events');
            this.index.markFailed();
            return;
          }
          this.index.add({ id, seq: message.seq, type, data } as EventEnvelope);
          this.index.makeVisible(message.seq);
        }
      } catch (error) {
        if (!this.connection.isClosed()) logger.warn({ err: error, after: this.index.length }, 'following the JetStream stream failed; resuming');
      }
      await sleep(250);
    }
  }

  private async untilIndexed(seq: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(unavailable(`Event ${seq} was stored but has not come back from JetStream in time`)), this.options.timeoutMs);
    });
    try {
      await Promise.race([this.index.untilVisible(seq), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
