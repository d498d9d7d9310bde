import { crc32 } from 'node:zlib';
import { createServiceApp, livePath, receiveEvents, type EventServiceDeps } from '@blog/common';
import type { Express } from 'express';
import type { QueryView } from './domain/query-view.js';
import { createLiveStream } from './live-stream.js';

export function createQueryApp(deps: EventServiceDeps<QueryView>): Express {
  const { logger, metrics, lifecycle, projection } = deps;
  // The view only changes with a new event, so its JSON (as bytes, with its ETag) is built once per
  // change, not per request: with thousands of posts, encoding and hashing it was most of the cost
  // of a GET /posts.
  let cached = { seq: -1, body: Buffer.from('{}'), etag: '' };
  const currentView = () => {
    if (cached.seq !== projection.lastSeq) {
      const body = Buffer.from(JSON.stringify(Object.fromEntries(projection.state.posts)));
      cached = { seq: projection.lastSeq, body, etag: `"${projection.lastSeq}-${crc32(body).toString(16)}"` };
    }
    return cached;
  };

  return createServiceApp({ logger, metrics, lifecycle }, (app) => {
    app.get('/posts', (_req, res) => {
      const { body, etag } = currentView();
      // With the ETag set, Express answers 304 to a matching If-None-Match instead of hashing again.
      res.set('etag', etag).type('application/json').send(body);
    });

    app.get(livePath, createLiveStream(projection, lifecycle, () => currentView().body));
  }, receiveEvents(deps));
}
