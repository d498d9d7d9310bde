import { crc32 } from 'node:zlib';
import { createServiceApp, livePath, PostsPageQuery, receiveEvents, sendJsonObject, type EventServiceDeps } from '@blog/common';
import type { Express } from 'express';
import { queryConfig, type QueryConfig } from './config.js';
import type { QueryView } from './domain/query-view.js';
import { createLiveStream } from './live-stream.js';

/** A whole-map answer up to this size is kept and sent again until the view changes; a larger one is streamed every time. */
const CACHED_VIEW_MAX_BYTES = 2 * 1024 * 1024;

export function createQueryApp(deps: EventServiceDeps<QueryView>, config: QueryConfig = queryConfig.parse({})): Express {
  const { logger, metrics, lifecycle, projection } = deps;
  // The view only changes with a new event: its position in the log is its version.
  const versionOfView = () => `${projection.lastSeq}-${crc32(projection.logId ?? '').toString(16)}`;
  let cached: { etag: string; body: Buffer } | undefined;
  // The newest page is what every visitor reads first: kept (one limit at a time) until the view changes.
  let newestPage: { etag: string; body: Buffer } | undefined;

  return createServiceApp({ logger, metrics, lifecycle }, (app) => {
    app.get('/posts', async (req, res) => {
      // The paged form (newest first) when asked for; the classic whole map otherwise.
      if (req.query.limit !== undefined || req.query.before !== undefined) {
        const { limit, before } = PostsPageQuery.parse(req.query);
        const etag = `"${versionOfView()}-${limit}-${before ?? 'newest'}"`;
        res.set('etag', etag);
        if (req.fresh) {
          res.status(304).end();
          return;
        }
        if (before === undefined && newestPage?.etag === etag) {
          res.type('application/json').send(newestPage.body);
          return;
        }
        const body = Buffer.from(JSON.stringify(projection.state.page(limit, before === undefined ? undefined : Number(before))));
        if (before === undefined) newestPage = { etag, body };
        res.type('application/json').send(body);
        return;
      }
      const etag = `"${versionOfView()}"`;
      res.set('etag', etag);
      if (req.fresh) {
        res.status(304).end();
        return;
      }
      if (cached?.etag === etag) {
        res.type('application/json').send(cached.body);
        return;
      }
      const body = await sendJsonObject(res, projection.state.pages(), (post) => post.id, { keepUpToBytes: CACHED_VIEW_MAX_BYTES });
      // Kept only if nothing changed while it was being sent.
      if (body && `"${versionOfView()}"` === etag) cached = { etag, body };
    });

    app.get(livePath, createLiveStream({ projection, lifecycle, logger, metrics, maxStreams: config.MAX_LIVE_STREAMS }));
  }, receiveEvents(deps));
}
