import { createServiceApp, CreatePostBody, parseBody, receiveEvents, sendJsonObject, type EventServiceDeps } from '@blog/common';
import type { Express } from 'express';
import { postCreated, type PostsState } from './domain/posts.js';

export function createPostsApp(deps: EventServiceDeps<PostsState>): Express {
  const { logger, metrics, lifecycle, bus, projection } = deps;
  return createServiceApp({ logger, metrics, lifecycle }, (app) => {
    // The classic whole map, streamed from the database: its size never sits in memory.
    app.get('/posts', async (_req, res) => {
      await sendJsonObject(res, projection.state.pages(), (post) => post.id);
    });

    // 201 means the event is durably in the log. 503 means the bus could not confirm it: usually
    // nothing was stored, but a bus that dies between its fsync and its answer leaves the post in.
    app.post('/posts/create', async (req, res) => {
      const { title } = parseBody(CreatePostBody, req);
      const stored = await bus.publish(postCreated(title));
      // Read-your-writes on GET /posts. If this fails the log still has the post and we catch up later.
      await projection.deliver(stored).catch((error: unknown) => logger.warn({ err: error, seq: stored.seq }, 'applying own event deferred'));
      res.status(201).json(stored.data);
    });
  }, receiveEvents(deps));
}
