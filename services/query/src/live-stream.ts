import { randomInt } from 'node:crypto';
import {
  Counter,
  Gauge,
  liveEventNames,
  LiveStreamQuery,
  type EventEnvelope,
  type Lifecycle,
  type LiveComment,
  type LiveFrameKind,
  type Logger,
  type Projection,
  type Registry,
} from '@blog/common';
import type { RequestHandler, Response } from 'express';
import type { QueryView } from './domain/query-view.js';

/**
 * Bytes queued for a client on top of its snapshot past which it is dropped: it reconnects and
 * starts again from a snapshot. Frames are small (one comment), so this is dozens of them behind
 * what the kernel already holds for that connection.
 */
const MAX_BACKLOG_BYTES = 64 * 1024;
const HEARTBEAT_MS = 15_000;
/** Retry-After of a refused connection, in seconds: spread, so refused clients do not all come back at once. */
const RETRY_AFTER_S = { min: 5, max: 15 } as const;
const heartbeat = Buffer.from(': keep-alive\n\n');

export interface LiveStreamDeps {
  projection: Projection<QueryView>;
  lifecycle: Lifecycle;
  logger: Logger;
  metrics: Registry;
  /** Open streams this process serves at most; a connection beyond them gets 503 with Retry-After. */
  maxStreams: number;
}

interface LiveClient {
  res: Response;
  frames: LiveFrameKind;
  /**
   * The snapshot's bytes, until it has left this process: not counted as backlog, so a reader on a
   * slow link gets its snapshot whole however large it is, instead of being cut and starting over.
   */
  snapshotBytes: number;
}

/** One server-sent event, as bytes: written to every client as the same Buffer, never copied per connection. */
function frameOf(seq: number, name: string, data: unknown): Buffer {
  return Buffer.from(`id: ${seq}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * `GET /posts/stream`: server-sent events for the browser. Each connection starts with the newest
 * page of posts (`snapshot`, a PostsPage; `?limit=N` as on GET /posts), then gets every post that
 * was created or whose comments changed (`post`, with its cursor), wherever it sorts: the client
 * keeps the ones it shows. With `?frames=changes` a comment change is a `comment` frame with only
 * that comment. Reconnecting simply starts with a new snapshot, so nothing on screen can be missed.
 */
export function createLiveStream({ projection, lifecycle, logger, metrics, maxStreams }: LiveStreamDeps): RequestHandler {
  const clients = new Set<LiveClient>();
  const refused = new Counter({
    name: 'live_stream_refused_total',
    help: 'Live stream connections answered 503 because MAX_LIVE_STREAMS were open',
    registers: [metrics],
  });
  const dropped = new Counter({
    name: 'live_stream_dropped_total',
    help: 'Live streams ended because their reader fell too far behind',
    registers: [metrics],
  });
  const openStreams: Gauge = new Gauge({
    name: 'live_stream_clients',
    help: 'Live streams open',
    registers: [metrics],
    collect: () => openStreams.set(clients.size),
  });
  // Logged when the limit is reached, not for every connection refused while it lasts.
  let full = false;

  const remove = (client: LiveClient) => {
    clients.delete(client);
    if (clients.size < maxStreams) full = false;
  };

  const send = (client: LiveClient, frame: Buffer) => {
    const { res } = client;
    if (res.writableLength - client.snapshotBytes > MAX_BACKLOG_BYTES) {
      dropped.inc();
      res.destroy();
      remove(client);
      return;
    }
    res.write(frame);
  };

  // The newest page changes only with an event: its frame is built once per version and limit, not per connection.
  let snapshot: { key: string; frame: Buffer } | undefined;
  const snapshotFrame = (limit: number): Buffer => {
    const key = `${projection.lastSeq}-${limit}`;
    if (snapshot?.key !== key) {
      const data = JSON.stringify(projection.state.page(limit));
      snapshot = { key, frame: Buffer.from(`retry: 2000\nid: ${projection.lastSeq}\nevent: ${liveEventNames.snapshot}\ndata: ${data}\n\n`) };
    }
    return snapshot.frame;
  };

  /** What each kind of client gets for `event`, built only if some client wants it; null: nothing to send. */
  const framesOf = (event: EventEnvelope) => {
    const postId = event.type === 'PostCreated' ? event.data.id : event.data.postId;
    const wholePost = () => {
      const post = projection.state.livePost(postId);
      return post ? frameOf(event.seq, liveEventNames.post, post) : null;
    };
    const changed = (): Buffer | null => {
      if (event.type === 'PostCreated') return posts.get();
      const cursor = projection.state.postCursor(postId);
      const comment = projection.state.comment(event.data.id);
      // A comment before its post: the post's own frame carries it once the post arrives.
      if (cursor === undefined || !comment) return null;
      const data: LiveComment = { postId, cursor, comment };
      return frameOf(event.seq, liveEventNames.comment, data);
    };
    const posts = once(wholePost);
    return { posts, changes: once(changed) };
  };

  projection.onApplied((event) => {
    if (clients.size === 0) return;
    const frames = framesOf(event);
    for (const client of clients) {
      const frame = frames[client.frames].get();
      if (frame) send(client, frame);
    }
  });

  // Open streams would hold a graceful shutdown until its deadline: end them, clients reconnect.
  lifecycle.onStopping(() => {
    for (const { res } of clients) res.end();
    clients.clear();
  });

  return (req, res) => {
    const { limit, frames } = LiveStreamQuery.parse(req.query);
    if (clients.size >= maxStreams) {
      refused.inc();
      if (!full) logger.warn({ maxStreams }, 'live streams at their limit (MAX_LIVE_STREAMS): refusing new ones with 503 until some close');
      full = true;
      res
        .status(503)
        .set('retry-after', String(randomInt(RETRY_AFTER_S.min, RETRY_AFTER_S.max + 1)))
        .json({ error: { code: 'too_many_streams', message: `This process already serves ${maxStreams} live streams; try again after Retry-After seconds` } });
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // Tells nginx-based proxies (ingress-nginx) not to buffer this response.
      'x-accel-buffering': 'no',
    });
    const first = snapshotFrame(limit);
    const client: LiveClient = { res, frames, snapshotBytes: first.length };
    // Once `drain` follows, everything written so far, the snapshot with it, has left this process.
    if (res.write(first)) client.snapshotBytes = 0;
    else res.once('drain', () => (client.snapshotBytes = 0));
    clients.add(client);
    const beat = setInterval(() => send(client, heartbeat), HEARTBEAT_MS);
    req.on('close', () => {
      clearInterval(beat);
      remove(client);
    });
  };
}

/** `make()`'s value, computed on the first `get()` only. */
function once<T>(make: () => T): { get: () => T } {
  let made: { value: T } | undefined;
  return { get: () => (made ??= { value: make() }).value };
}
