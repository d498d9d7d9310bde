import { liveEventNames, PostsPageQuery, type Lifecycle, type Projection } from '@blog/common';
import type { RequestHandler, Response } from 'express';
import type { QueryView } from './domain/query-view.js';

/** A client that cannot keep up is dropped; it reconnects and starts again from a snapshot. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const HEARTBEAT_MS = 15_000;

/**
 * `GET /posts/stream`: server-sent events for the browser. Each connection starts with the newest
 * page of posts (`snapshot`, a PostsPage; `?limit=N` as on GET /posts), then gets every post whose
 * title or comments changed (`post`, with its cursor), wherever it sorts: the client keeps the ones
 * it shows. Reconnecting simply starts with a new snapshot, so nothing on screen can be missed.
 */
export function createLiveStream(projection: Projection<QueryView>, lifecycle: Lifecycle): RequestHandler {
  const clients = new Set<Response>();

  const send = (res: Response, frame: string) => {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      res.destroy();
      clients.delete(res);
      return;
    }
    res.write(frame);
  };

  projection.onApplied((event) => {
    if (clients.size === 0) return;
    const postId = event.type === 'PostCreated' ? event.data.id : event.data.postId;
    const post = projection.state.livePost(postId);
    if (!post) return;
    const frame = `id: ${event.seq}\nevent: ${liveEventNames.post}\ndata: ${JSON.stringify(post)}\n\n`;
    for (const res of clients) send(res, frame);
  });

  // Open streams would hold a graceful shutdown until its deadline: end them, clients reconnect.
  lifecycle.onStopping(() => {
    for (const res of clients) res.end();
    clients.clear();
  });

  return (req, res) => {
    const { limit } = PostsPageQuery.parse(req.query);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // Tells nginx-based proxies (ingress-nginx) not to buffer this response.
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\nid: ${projection.lastSeq}\nevent: ${liveEventNames.snapshot}\ndata: ${JSON.stringify(projection.state.page(limit))}\n\n`);
    clients.add(res);
    const heartbeat = setInterval(() => send(res, ': keep-alive\n\n'), HEARTBEAT_MS);
    req.on('close', () => {
      clearInterval(heartbeat);
      clients.delete(res);
    });
  };
}
