import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { AppError, backoffMs, inTransaction, MetaTable, openDatabase, Registry, sleep, type DatabaseSync, type EventEnvelope, type Logger, type PublishRequest, type StatementSync } from '@blog/common';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
} from '@nats-io/jetstream';
import { connect, createInbox, headers as natsHeaders, nanos, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { checkMessage, deadLetterJson, DeadLetters, type CheckedMessage, type StreamEvent } from './dead-letters.js';
import { defaultTailCacheLimits, EventIndex, idConflict, sameEvent, storeFailed, type TailCacheLimits } from './event-index.js';
import type { AppendResult, EventStore, StoredEvent } from './event-store.js';

export interface JetStreamStoreOptions {
  servers: string[];
  /** The stream's name; its subject is `<stream>.events`. */
  stream: string;
  /** How many JetStream servers keep each event (1 on one machine, 3 in the cluster). */
  replicas: number;
  /** Publishing and reading give up after this long with a 503. */
  timeoutMs: number;
  /** DATA_DIR: the replica's id index (`jetstream-index.db`) lives here. */
  dataDir: string;
  logger: Logger;
  /** Where event_bus_dead_letters_total is counted (see DeadLetters). */
  metrics?: Registry;
  /** The bus's NATS user (NATS_USER, NATS_PASSWORD); without it the bus connects anonymously. */
  credentials?: { user: string; password: string } | undefined;
  /** How much of the newest log is kept in memory for live delivery and long polls. */
  cache?: TailCacheLimits;
}

export const indexFile = 'jetstream-index.db';

/** JetStream remembers message ids this long to drop a retried publish (after that, the id index does). */
const DUPLICATE_WINDOW_MS = 10 * 60_000;
/** The follower asks JetStream for this many events at a time. */
const FOLLOW_BATCH = 1_000;
/** Ids written to the index in one transaction... */
const ID_WRITE_BATCH = 50_000;
/** ...or after this long, whichever comes first. */
const ID_WRITE_MS = 1_000;
/** A follower's pull waits this long for new events before it is renewed (and its heartbeats checked). */
const FOLLOW_EXPIRES_MS = 10_000;
/** A read of older events fetches at most this many at once (a page of `GET /events` at most). */
const READ_BATCH = 1_000;
/** Readers kept between pages, so that a consumer paging through the log reuses one. */
const IDLE_READERS = 8;
const READER_IDLE_MS = 10_000;
/** JetStream deletes a consumer of ours unused this long (a replica that died never cleans up). */
const CONSUMER_INACTIVE_MS = 60_000;
/** A read just past what the follower brought waits this long for it before going to the stream. */
const NEAR_HEAD_WAIT_MS = 1_000;
/** How long a reader at the head waits for JetStream (and a connection to it) to tell the stream's head. */
const SYNC_HEAD_WAIT_MS = 2_000;
/** A publish that no stream answered is sent again after this long, within its timeout. */
const NO_STREAM_RETRY_MS = 250;

const unavailable = (message: string, cause?: unknown) => new AppError({ status: 503, code: 'event_store_unavailable', message, cause });

/** The body of an event's message: its envelope without `seq` (the stream numbers it). */
export const messageBody = (event: StreamEvent): string => JSON.stringify({ id: event.id, type: event.type, data: event.data });

const idPrefix = '{"id":"';

/**
 * The event as subscribers get it, from the body of its message, once the body is checked to be
 * an event the bus accepts: `seq` goes in after the id, which is exactly what
 * JSON.stringify({ id, seq, type, data }) gives, without writing `data` again (an id never needs
 * escaping in JSON: see `eventId`). Anything else is a dead letter: the DeadLetter event in its
 * place (see dead-letters.ts).
 */
export function storedEvent(seq: number, body: string): { event: StoredEvent; checked: CheckedMessage } {
  const checked = checkMessage(body);
  if (!checked.valid) return { event: { seq, id: `dead-letter-${seq}`, json: deadLetterJson(seq, checked.reason) }, checked };
  const { id, type, data } = checked.event;
  if (leadingId(body) === id) return { event: { seq, id, json: `${idPrefix}${id}","seq":${seq},${body.slice(idPrefix.length + id.length + 2)}` }, checked };
  return { event: { seq, id, json: JSON.stringify({ id, seq, type, data }) }, checked };
}

/** The id of a message body as `messageBody` writes it; undefined for any other shape. */
function leadingId(body: string): string | undefined {
  if (!body.startsWith(idPrefix)) return undefined;
  const end = body.indexOf('"', idPrefix.length);
  if (end < 0 || body.charCodeAt(end + 1) !== 44 /* , */ || body.lastIndexOf('\\', end) > 0) return undefined;
  return body.slice(idPrefix.length, end);
}

/**
 * The log id of one incarnation of a stream, UUID-shaped: JetStream keeps a stream's creation time
 * across restarts, and a stream deleted and created again under the same name gets a new one (this
 * nats-server has no stream metadata to keep our own id in).
 */
export function streamLogId(stream: string, created: string): string {
  const hex = createHash('sha256').update(`${stream}\n${created}`).digest('hex');
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The log kept in a JetStream stream: the bus becomes a stateless front and can run as several
 * replicas. The stream's sequence numbers are the events' `seq`; nothing of the stream is held in
 * memory but the index's bounded cache of the newest events.
 *
 * - Publishing: an id the replica's index knows gets the stored event back (read from the stream);
 *   any other is published with the event id as JetStream's message id, so that JetStream drops a
 *   copy that another replica published moments ago (its duplicate window). A publish is answered,
 *   and the event is visible, as soon as JetStream acknowledges it.
 * - Following: each replica reads the stream in order with a consumer of its own, writing every
 *   id's seq to a local SQLite index (rebuildable from the stream) and filling the cache.
 * - Reading older events: a consumer starting where the reader is, kept for its next page.
 */
export class JetStreamStore implements EventStore {
  readonly index: EventIndex;
  private readonly cacheEvents: number;
  /** The highest seq the follower has taken from the stream. */
  private followed: number;
  /** The highest seq in the cache (and visible): what the follower took, at the end of its turn. */
  private remembered: number;
  /** Taken this turn and new enough to stay in the cache. */
  private takenForCache: StoredEvent[] = [];
  private turnScheduled = false;
  private rememberedChanged = Promise.withResolvers<void>();
  /**
   * Ids taken but not in the id index yet, written in one sorted transaction per `ID_WRITE_BATCH` or
   * `ID_WRITE_MS`: each write of random ids into the B-tree rewrites the pages they land on, so
   * the fewer writes the better, and these are found here meanwhile.
   */
  private unindexed = new Map<string, number>();
  private idWriteTimer: NodeJS.Timeout | undefined;
  private following: Promise<void> = Promise.resolve();
  private currentPull: ConsumerMessages | undefined;
  private readonly stopping = new AbortController();
  private readonly link: ConnectionState;
  private readonly readers: StreamReaders;
  private readonly publisher: StreamPublisher;
  private readonly seqOfStatement: StatementSync;
  private readonly insertStatement: StatementSync;
  private readonly meta: MetaTable;
  private readonly deadLetters: DeadLetters;

  private constructor(
    readonly connection: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly db: DatabaseSync,
    readonly logId: string,
    indexedSeq: number,
    private readonly options: JetStreamStoreOptions,
  ) {
    this.cacheEvents = (options.cache ?? defaultTailCacheLimits).maxEvents;
    this.index = new EventIndex(options.cache ?? defaultTailCacheLimits);
    this.followed = indexedSeq;
    this.remembered = indexedSeq;
    this.link = new ConnectionState(connection);
    // A pull sent on a lost connection may be gone with it: the follower starts a new consumer.
    this.link.onLost(() => this.currentPull?.stop());
    this.readers = new StreamReaders(this, options.timeoutMs);
    this.publisher = new StreamPublisher(connection, this.subject, this.stream);
    this.seqOfStatement = db.prepare('SELECT seq FROM ids WHERE id = ?');
    this.insertStatement = db.prepare('INSERT OR IGNORE INTO ids (id, seq) VALUES (?, ?)');
    this.meta = new MetaTable(db);
    this.deadLetters = new DeadLetters(db, options.logger, options.metrics ?? new Registry(), options.stream);
  }

  get stream(): string {
    return this.options.stream;
  }

  get subject(): string {
    return `${this.options.stream}.events`;
  }

  /** Resolves once the replica's id index has caught up with the stream as it was at the start. */
  static async open(options: JetStreamStoreOptions): Promise<JetStreamStore> {
    const { servers, stream, replicas, timeoutMs, dataDir, logger, credentials } = options;
    // Waits for a server that is not up yet (a cluster starting with the bus), and reconnects
    // forever: a restarted JetStream server is found again. Credentials the server refuses fail
    // the start (the client gives up on an authorization error). No async stack traces: each
    // request would capture error objects up front.
    const connection = await connect({
      servers,
      name: 'event-bus',
      ...(credentials ? { user: credentials.user, pass: credentials.password } : {}),
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      timeout: timeoutMs,
      noAsyncTraces: true,
    });
    let db: DatabaseSync | undefined;
    try {
      const jsm = await jetstreamManager(connection, { timeout: timeoutMs });
      await ensureStream(jsm, stream, replicas, logger);
      const info = await jsm.streams.info(stream);
      const head = info.state.last_seq;
      const logId = streamLogId(stream, info.created);
      db = openDatabase(path.join(dataDir, indexFile), { durability: 'normal' });
      const indexedSeq = openIndex(db, logId, head, logger);
      const store = new JetStreamStore(connection, jetstream(connection, { timeout: timeoutMs }), jsm, db, logId, indexedSeq, options);
      store.index.makeVisible(head);
      store.following = store.follow();
      const started = performance.now();
      await store.untilRemembered(head);
      // Ready with every id of the stream as it was at the start in the index.
      store.writeIds();
      logger.info({ stream, events: head, indexed: head - indexedSeq, ms: Math.round(performance.now() - started), logId, servers }, 'JetStream stream opened');
      return store;
    } catch (error) {
      db?.close();
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  async appendAll(requests: readonly PublishRequest[]): Promise<AppendResult[]> {
    if (this.index.failed || this.stopping.signal.aborted) throw storeFailed();
    const fresh = new Map<string, StreamEvent>();
    const plan = requests.map((request) => {
      const id = request.id ?? randomUUID();
      const inBatch = fresh.get(id);
      if (inBatch && !sameEvent(inBatch, request)) throw idConflict(id, 'earlier in the same batch');
      // A generated id is new by construction: no need to look it up.
      const seq = request.id === undefined || inBatch ? undefined : this.indexedSeqOf(id);
      if (seq === undefined) fresh.set(id, { id, type: request.type, data: request.data });
      return { request, id, seq };
    });
    // Every id the index knows is checked before anything is published: a conflict refuses the whole batch.
    const known = new Map<number, EventEnvelope>();
    for (const { request, id, seq } of plan) {
      if (seq === undefined) continue;
      const stored = known.get(seq) ?? (await this.storedEnvelope(seq));
      if (stored.id !== id || !sameEvent(stored, request)) throw idConflict(id, `seq ${seq}`, stored.id === id ? stored : undefined);
      known.set(seq, stored);
    }

    const { acks, sentAgain } = await this.publish([...fresh.values()]);
    this.index.makeVisible(Math.max(0, ...[...acks.values()].map((ack) => ack.seq)));
    const results: AppendResult[] = [];
    // A later occurrence of an id in this batch is that same event again, not a new one.
    const answered = new Set<string>();
    for (const { request, id, seq } of plan) {
      if (seq !== undefined) {
        results.push({ envelope: known.get(seq)!, created: false });
        continue;
      }
      const ack = acks.get(id)!;
      const first = !answered.has(id);
      answered.add(id);
      if (!ack.duplicate) {
        results.push({ envelope: { id, seq: ack.seq, type: request.type, data: request.data } as EventEnvelope, created: first });
        continue;
      }
      // JetStream already had this id (another replica, or our own send before a reconnect): it must be the same event.
      const stored = await this.storedEnvelope(ack.seq);
      if (stored.id !== id || !sameEvent(stored, request)) throw idConflict(id, `seq ${ack.seq}`, stored.id === id ? stored : undefined);
      results.push({ envelope: stored, created: first && sentAgain.has(id) });
    }
    return results;
  }

  async read(after: number, limit: number, maxBytes = Number.POSITIVE_INFINITY): Promise<StoredEvent[]> {
    if (after >= this.index.visibleSeq || limit <= 0) return [];
    // Just published and on its way to the follower: the cache will have it in a moment.
    if (after >= this.remembered) await this.untilRemembered(after + 1, NEAR_HEAD_WAIT_MS);
    if (this.remembered > after) {
      const page = this.index.cached(after, Math.min(limit, this.remembered - after), maxBytes);
      if (page && page.length > 0) return page;
    }
    return this.readers.read(after, Math.min(limit, this.index.visibleSeq - after, READ_BATCH), maxBytes);
  }

  /**
   * Another replica's events reach this one through the follower, a moment after that replica
   * answered: a reader at this replica's head (who may have heard of newer events elsewhere) gets
   * the stream's head from JetStream, and what the follower has not brought yet is read from the
   * stream. Without an answer soon, the reader gets what this replica has.
   */
  async syncHead(): Promise<void> {
    const deadline = performance.now() + SYNC_HEAD_WAIT_MS;
    if (this.index.failed || !(await this.link.upBefore(deadline))) return;
    const asked = this.jsm.streams.info(this.stream);
    asked.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - performance.now()))));
    const info = await Promise.race([asked, gaveUp]).catch(() => undefined);
    clearTimeout(timer);
    if (info) this.index.makeVisible(info.state.last_seq);
  }

  async close(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    this.currentPull?.stop();
    await this.following;
    await this.readers.close();
    this.writeIds();
    await this.connection.drain().catch(() => undefined);
    if (this.db.isOpen) this.db.close();
  }

  /** A consumer of our own, starting at `seq`: JetStream forgets it once unused, or when it restarts. */
  async openConsumer(seq: number): Promise<Consumer> {
    const info = await this.jsm.consumers.add(this.stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: seq,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(CONSUMER_INACTIVE_MS),
    });
    return this.js.consumers.get(this.stream, info.name);
  }

  deleteConsumer(consumer: Consumer | undefined): void {
    if (!consumer || this.connection.isClosed()) return;
    void consumer.delete().catch(() => undefined);
  }

  /** The event of a stream message as it is served: the message's own, or the DeadLetter event in its place. */
  eventOf(seq: number, body: string): StoredEvent {
    return this.decode(seq, body).event;
  }

  private decode(seq: number, body: string): ReturnType<typeof storedEvent> {
    const decoded = storedEvent(seq, body);
    if (!decoded.checked.valid) this.deadLetters.record(seq, body, decoded.checked.reason, decoded.checked.detail);
    return decoded;
  }

  private indexedSeqOf(id: string): number | undefined {
    return (this.seqOfStatement.get(id) as { seq: number } | undefined)?.seq ?? this.unindexed.get(id);
  }

  /** The stored event with this seq: from the cache, else from the stream. */
  private async storedEnvelope(seq: number): Promise<EventEnvelope> {
    let event = this.index.cached(seq - 1, 1)?.[0];
    if (!event) {
      const message = await this.jsm.streams.getMessage(this.stream, { seq }).catch((error: unknown) => {
        throw unavailable(`Event ${seq} could not be read from JetStream: ${(error as Error).message}`, error);
      });
      if (!message) throw unavailable(`Event ${seq} is missing from the JetStream stream`);
      event = this.eventOf(seq, message.string());
    }
    return JSON.parse(event.json) as EventEnvelope;
  }

  /**
   * Publishes in order on one connection (JetStream stores them in this order). The client drops
   * what was sent while the connection was down, and a dropped connection may have lost a publish
   * or its acknowledgement: what is unconfirmed is sent again once the connection is back, with the
   * same message ids, so JetStream stores each once.
   */
  private async publish(events: readonly StreamEvent[]): Promise<{ acks: Map<string, PubAck>; sentAgain: Set<string> }> {
    const acks = new Map<string, PubAck>();
    const sentAgain = new Set<string>();
    const deadline = performance.now() + this.options.timeoutMs;
    for (let attempt = 0; acks.size < events.length; attempt += 1) {
      if (!(await this.link.upBefore(deadline))) throw unavailable('JetStream did not confirm the event: the connection to JetStream is down');
      const epoch = this.link.epoch;
      const unconfirmed = events.filter((event) => !acks.has(event.id));
      if (attempt > 0) for (const event of unconfirmed) sentAgain.add(event.id);
      const sent = this.publisher.send(unconfirmed, acks, deadline);
      const lost = this.link.whenLost(epoch);
      const outcome = await Promise.race([sent.done.then(() => undefined, (error: unknown) => error as Error), lost.promise]);
      lost.cancel();
      sent.forget();
      if (outcome === undefined) break;
      if (outcome === 'lost') continue;
      // JetStream still starting (a server that just restarted): try again while there is time.
      if (outcome instanceof NoStreamAnswered && deadline - performance.now() > NO_STREAM_RETRY_MS) {
        await sleep(NO_STREAM_RETRY_MS);
        continue;
      }
      throw unavailable(`JetStream did not confirm the event: ${outcome.message}`, outcome);
    }
    return { acks, sentAgain };
  }

  /** Resolves once the follower has brought `seq` into the cache, or after `waitMs`; rejects if the store failed. */
  private async untilRemembered(seq: number, waitMs = Number.POSITIVE_INFINITY): Promise<void> {
    const deadline = performance.now() + waitMs;
    while (this.remembered < seq && !this.stopping.signal.aborted) {
      if (this.index.failed) throw storeFailed();
      const left = deadline - performance.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.rememberedChanged.promise, ...(Number.isFinite(left) ? [new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))] : [])]);
      clearTimeout(timer);
    }
  }

  /**
   * Reads the stream in order, for good, with a consumer of its own: each pull asks for a batch and
   * waits for new events; a consumer that is gone (JetStream restarted) or a connection that came
   * back starts a new one where the follower is. (No ordered consumer: the client's one recreates
   * itself after a restart, but asks for too few events and then stalls for two heartbeats.)
   */
  private async follow(): Promise<void> {
    const { logger } = this.options;
    const signal = this.stopping.signal;
    for (let failures = 0; !signal.aborted; failures += 1) {
      let consumer: Consumer | undefined;
      try {
        await this.link.upBefore(Number.POSITIVE_INFINITY, signal);
        if (signal.aborted) break;
        await this.checkSameStream();
        const epoch = this.link.epoch;
        consumer = await this.openConsumer(this.nextToFollow());
        while (!signal.aborted && this.link.epoch === epoch && !this.index.failed) {
          const pull = await consumer.fetch({ max_messages: FOLLOW_BATCH, expires: FOLLOW_EXPIRES_MS });
          this.currentPull = pull;
          // A reconnect that happened while the pull was being set up would otherwise go unnoticed.
          if (this.link.epoch !== epoch || signal.aborted) pull.stop();
          for await (const message of pull) {
            this.take(message.seq, message.string());
            failures = 0;
          }
        }
        if (this.index.failed) break;
      } catch (error) {
        if (!signal.aborted && failures % 10 === 0) logger.warn({ err: error, followed: this.followed }, 'following the JetStream stream failed; starting again');
      } finally {
        this.currentPull = undefined;
        this.deleteConsumer(consumer);
      }
      if (!signal.aborted && !this.index.failed && failures > 0) await sleep(backoffMs(failures, 100, 2_000), signal);
    }
  }

  private nextToFollow(): number {
    return this.followed + 1;
  }

  /** A stream deleted and created again under our feet is another log: the bus must be restarted. */
  private async checkSameStream(): Promise<void> {
    const info = await this.jsm.streams.info(this.stream);
    if (streamLogId(this.stream, info.created) === this.logId) return;
    this.options.logger.fatal({ stream: this.stream }, 'the JetStream stream was deleted and created again; restart the bus');
    this.index.markFailed();
    this.rememberedChanged.resolve();
  }

  private take(seq: number, body: string): void {
    const expected = this.nextToFollow();
    // Sent again by a consumer that started over: already taken.
    if (seq < expected || this.index.failed) return;
    if (seq > expected) {
      this.options.logger.fatal({ seq, expected }, 'the JetStream stream has a gap (were messages deleted?); the bus cannot number events');
      this.index.markFailed();
      this.rememberedChanged.resolve();
      this.currentPull?.stop();
      return;
    }
    // Every message is checked, also when the index is rebuilt from the whole stream: an id goes
    // into the index only from an event the bus could have stored.
    const { event, checked } = this.decode(seq, body);
    // An id stored twice (published again after the duplicate window by a replica whose index was
    // behind) keeps its first seq. A dead letter has no id to index.
    if (checked.valid && !this.unindexed.has(event.id)) this.unindexed.set(event.id, seq);
    if (seq > this.index.visibleSeq - this.cacheEvents) this.takenForCache.push(event);
    this.followed = seq;
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => this.endTurn());
  }

  /** What the follower took this turn goes into the cache and becomes visible at once; ids are written in batches. */
  private endTurn(): void {
    this.turnScheduled = false;
    if (this.index.failed) return;
    this.index.remember(this.takenForCache);
    this.takenForCache = [];
    this.remembered = this.followed;
    this.index.makeVisible(this.followed);
    this.rememberedChanged.resolve();
    this.rememberedChanged = Promise.withResolvers<void>();
    if (this.unindexed.size >= ID_WRITE_BATCH) this.writeIds();
    else if (this.unindexed.size > 0 && !this.idWriteTimer) {
      this.idWriteTimer = setTimeout(() => this.writeIds(), ID_WRITE_MS);
      this.idWriteTimer.unref();
    }
  }

  /** One transaction for the ids taken since the last one, in key order. */
  writeIds(): void {
    clearTimeout(this.idWriteTimer);
    this.idWriteTimer = undefined;
    if (this.unindexed.size === 0 || !this.db.isOpen) return;
    const ids = [...this.unindexed].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const through = this.followed;
    try {
      inTransaction(this.db, () => {
        for (const [id, seq] of ids) this.insertStatement.run(id, seq);
        this.meta.set('indexed_seq', through);
      });
    } catch (error) {
      this.options.logger.fatal({ err: error }, 'the JetStream id index could not be written');
      this.index.markFailed();
      this.rememberedChanged.resolve();
      return;
    }
    this.unindexed = new Map();
  }
}

/**
 * Opens the id index of this stream: one left from another stream (or another incarnation of this
 * one) is emptied. Returns the last seq it holds.
 */
function openIndex(db: DatabaseSync, logId: string, head: number, logger: Logger): number {
  return inTransaction(db, () => {
    db.exec('CREATE TABLE IF NOT EXISTS ids (id TEXT PRIMARY KEY, seq INTEGER NOT NULL) STRICT, WITHOUT ROWID');
    DeadLetters.createTable(db);
    const meta = new MetaTable(db);
    const indexed = Number(meta.get('indexed_seq') ?? 0);
    if (meta.get('log_id') === logId && indexed <= head) return indexed;
    if (meta.get('log_id') !== undefined) logger.warn({ logId, indexed, head }, 'the JetStream id index is from another stream; rebuilding it');
    db.exec('DELETE FROM ids');
    db.exec('DELETE FROM dead_letters');
    meta.set('log_id', logId);
    meta.set('indexed_seq', 0);
    return 0;
  });
}

/**
 * Creates the stream, or finds it. Its messages can never be deleted or purged through the API
 * (deny_delete, deny_purge): the bus numbers events by their place in the stream, and a hole would
 * stop it. A stream made before the bus asked for that gets both (JetStream lets them be turned on,
 * never off); if it refuses, the bus runs on and says so.
 */
async function ensureStream(jsm: JetStreamManager, stream: string, replicas: number, logger: Logger): Promise<void> {
  const existing = await jsm.streams.info(stream).catch(() => undefined);
  if (!existing) {
    await jsm.streams
      .add({
        name: stream,
        subjects: [`${stream}.events`],
        storage: StorageType.File,
        num_replicas: replicas,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        duplicate_window: nanos(DUPLICATE_WINDOW_MS),
        deny_delete: true,
        deny_purge: true,
      })
      // Another replica may have created it a moment ago.
      .catch(async (error: unknown) => {
        if (!(await jsm.streams.info(stream).catch(() => undefined))) throw error;
      });
    return;
  }
  if (existing.config.deny_delete && existing.config.deny_purge) return;
  await jsm.streams.update(stream, { deny_delete: true, deny_purge: true }).then(
    () => logger.info({ stream }, 'the JetStream stream now denies deleting and purging its messages'),
    (error: unknown) => logger.warn({ err: error, stream }, 'the JetStream stream allows deleting and purging its messages, and could not be changed: a deleted message would stop the bus'),
  );
}

/**
 * Publishes to the stream with JetStream's acknowledgements coming back on one inbox of our own.
 * The client's request() costs a timer, a promise and error objects per message, which a batch of
 * a thousand events turns into megabytes of garbage; here a batch has one timer.
 */
class StreamPublisher {
  private readonly inbox = createInbox();
  private next = 0;
  private readonly waiting = new Map<string, (answer: Msg) => void>();

  constructor(
    private readonly connection: NatsConnection,
    private readonly subject: string,
    private readonly stream: string,
  ) {
    connection.subscribe(`${this.inbox}.*`, {
      callback: (_error, message) => {
        const answered = this.waiting.get(message.subject);
        this.waiting.delete(message.subject);
        answered?.(message);
      },
    });
  }

  /**
   * Sends the events; `done` resolves once each has its ack in `acks`, and rejects on the first
   * refusal or at `deadline`. `forget` stops listening for what is still unanswered.
   */
  send(events: readonly StreamEvent[], acks: Map<string, PubAck>, deadline: number): { done: Promise<void>; forget: () => void } {
    const done = Promise.withResolvers<void>();
    const replies: string[] = [];
    let unanswered = events.length;
    for (const event of events) {
      this.next += 1;
      const reply = `${this.inbox}.${this.next}`;
      replies.push(reply);
      this.waiting.set(reply, (message) => {
        const answer = pubAck(message);
        if (answer instanceof Error) return done.reject(answer);
        acks.set(event.id, answer);
        unanswered -= 1;
        if (unanswered === 0) done.resolve();
      });
      const headers = natsHeaders();
      headers.set('Nats-Msg-Id', event.id);
      headers.set('Nats-Expected-Stream', this.stream);
      this.connection.publish(this.subject, messageBody(event), { reply, headers });
    }
    const timer = setTimeout(() => done.reject(new Error('timeout')), Math.max(0, deadline - performance.now()));
    done.promise.catch(() => undefined);
    return {
      done: done.promise,
      forget: () => {
        clearTimeout(timer);
        for (const reply of replies) this.waiting.delete(reply);
      },
    };
  }
}

class NoStreamAnswered extends Error {}

/** JetStream's answer to a publish: its ack, or why it refused (or that no stream listens). */
function pubAck(message: Msg): PubAck | Error {
  if (message.headers?.code === 503) return new NoStreamAnswered('no JetStream stream answered (is JetStream up?)');
  try {
    const answer = message.json<PubAck & { error?: { code: number; description: string } }>();
    if (answer.error) return new Error(answer.error.description);
    return answer;
  } catch (error) {
    return error as Error;
  }
}

/** Whether the connection is up, counted in losses; the client drops what is sent while it is down. */
class ConnectionState {
  up = true;
  /** How many times the connection was lost. */
  epoch = 0;
  private changed = Promise.withResolvers<void>();
  private readonly lostListeners = new Set<() => void>();

  constructor(private readonly connection: NatsConnection) {
    void (async () => {
      for await (const status of connection.status()) {
        if (status.type === 'disconnect') this.set(false);
        else if (status.type === 'reconnect') this.set(true);
      }
    })().catch(() => undefined);
  }

  /** True once the connection is up, false if it is not by `deadline` (a performance.now() time) or `signal` aborts. */
  async upBefore(deadline: number, signal?: AbortSignal): Promise<boolean> {
    while (!this.up) {
      const left = deadline - performance.now();
      if (left <= 0 || signal?.aborted || this.connection.isClosed()) return false;
      const giveUp = new AbortController();
      const stop = () => giveUp.abort();
      signal?.addEventListener('abort', stop, { once: true });
      await Promise.race([this.changed.promise, sleep(Math.min(left, 2 ** 31 - 1), giveUp.signal)]);
      giveUp.abort();
      signal?.removeEventListener('abort', stop);
    }
    return true;
  }

  /** Resolves with 'lost' once the connection of `epoch` is gone; `cancel` when no longer interested. */
  whenLost(epoch: number): { promise: Promise<'lost'>; cancel: () => void } {
    const lost = Promise.withResolvers<'lost'>();
    if (this.epoch !== epoch) lost.resolve('lost');
    const listener = () => lost.resolve('lost');
    this.lostListeners.add(listener);
    return { promise: lost.promise, cancel: () => this.lostListeners.delete(listener) };
  }

  /** Calls `listener` each time the connection is lost. */
  onLost(listener: () => void): void {
    this.lostListeners.add(listener);
  }

  private set(up: boolean): void {
    if (!up) {
      this.epoch += 1;
      for (const listener of [...this.lostListeners]) listener();
    }
    this.up = up;
    this.changed.resolve();
    this.changed = Promise.withResolvers<void>();
  }
}

/** A consumer reading the stream from some point, with what it fetched beyond the last page. */
interface Reader {
  consumer: Consumer;
  /** The first seq not returned yet. */
  next: number;
  /** Fetched but not returned (a page cut short by its byte limit): seqs from `next` on. */
  leftovers: StoredEvent[];
  idleTimer?: NodeJS.Timeout;
}

/**
 * Reads of events older than the cache. A reader is a consumer starting at the page's first seq;
 * after the page it waits, for a while, for the page after it: a subscriber paging through the
 * log costs one consumer, not one per page.
 */
class StreamReaders {
  private readonly idle = new Map<number, Reader>();
  private closed = false;

  constructor(
    private readonly store: JetStreamStore,
    private readonly timeoutMs: number,
  ) {}

  async read(after: number, count: number, maxBytes: number): Promise<StoredEvent[]> {
    const reused = this.take(after + 1);
    if (reused) {
      try {
        return await this.readWith(reused, count, maxBytes);
      } catch {
        // Its consumer may be gone (JetStream restarted, or it was idle too long): a new one below.
        this.store.deleteConsumer(reused.consumer);
      }
    }
    let reader: Reader | undefined;
    try {
      reader = { consumer: await this.store.openConsumer(after + 1), next: after + 1, leftovers: [] };
      return await this.readWith(reader, count, maxBytes);
    } catch (error) {
      this.store.deleteConsumer(reader?.consumer);
      throw error instanceof AppError ? error : unavailable(`Events after ${after} could not be read from JetStream: ${(error as Error).message}`, error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const readers = [...this.idle.values()];
    this.idle.clear();
    for (const reader of readers) clearTimeout(reader.idleTimer);
    await Promise.all(readers.map((reader) => reader.consumer.delete().catch(() => undefined)));
  }

  private async readWith(reader: Reader, count: number, maxBytes: number): Promise<StoredEvent[]> {
    const events = reader.leftovers.splice(0, count);
    const rest = reader.leftovers;
    const wanted = count - events.length;
    if (wanted > 0) {
      let expected = reader.next + events.length;
      const pull = await reader.consumer.fetch({ max_messages: wanted, expires: Math.max(1_000, this.timeoutMs) });
      for await (const message of pull) {
        if (message.seq !== expected) throw new Error(`JetStream sent seq ${message.seq} where ${expected} was expected`);
        events.push(this.store.eventOf(message.seq, message.string()));
        expected += 1;
      }
      if (events.length < count) throw new Error(`JetStream sent ${events.length} of the ${count} events after ${reader.next - 1}`);
    }
    let keep = events.length;
    let bytes = 0;
    for (let at = 0; at < events.length; at += 1) {
      bytes += events[at]!.json.length + 1;
      if (at > 0 && bytes > maxBytes) {
        keep = at;
        break;
      }
    }
    const page = events.slice(0, keep);
    reader.leftovers = [...events.slice(keep), ...rest];
    reader.next = page.at(-1)!.seq + 1;
    this.keep(reader);
    return page;
  }

  private take(next: number): Reader | undefined {
    const reader = this.idle.get(next);
    if (!reader) return undefined;
    this.idle.delete(next);
    clearTimeout(reader.idleTimer);
    return reader;
  }

  private keep(reader: Reader): void {
    if (this.closed || this.idle.has(reader.next)) return this.store.deleteConsumer(reader.consumer);
    if (this.idle.size >= IDLE_READERS) {
      const [oldest] = this.idle.values();
      this.take(oldest!.next);
      this.store.deleteConsumer(oldest!.consumer);
    }
    reader.idleTimer = setTimeout(() => {
      if (this.take(reader.next)) this.store.deleteConsumer(reader.consumer);
    }, READER_IDLE_MS);
    reader.idleTimer.unref();
    this.idle.set(reader.next, reader);
  }
}
