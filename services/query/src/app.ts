import { createServiceApp, livePath, receiveEvents, type EventServiceDeps } from '@blog/common';
import type { Express } from 'express';
import type { QueryView } from './domain/query-view.js';
import { createLiveStream } from './live-stream.js';

export function createQueryApp(deps: EventServiceDeps<QueryView>): Express {
  const { logger, metrics, lifecycle, projection } = deps;
  // The view only changes with a new event, so its JSON is built once per change, not per request.
  let cached = { seq: -1, json: '{}' };
  const viewJson = () => {
    if (cached.seq !== projection.lastSeq) cached = { seq: projection.lastSeq, json: JSON.stringify(Object.fromEntries(projection.state.posts)) };
    return cached.json;
  };

  return createServiceApp({ logger, metrics, lifecycle }, (app) => {
    app.get('/posts', (_req, res) => {
      res.type('application/json').send(viewJson());
    });

    app.get(livePath, createLiveStream(projection, lifecycle, viewJson));
  }, receiveEvents(deps));
}
