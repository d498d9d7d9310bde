import { AppError, CreateCommentBody, createServiceApp, entityId, parseBody, receiveEvents, type EventServiceDeps } from '@blog/common';
import type { Express } from 'express';
import { commentCreated, commentsOf, type CommentsState } from './domain/comments.js';

export function createCommentsApp(deps: EventServiceDeps<CommentsState>): Express {
  const { logger, metrics, lifecycle, bus, projection } = deps;
  const state = () => projection.state;

  return createServiceApp({ logger, metrics, lifecycle }, (app) => {
    app.get('/posts/:id/comments', (req, res) => {
      res.json(commentsOf(state(), req.params.id));
    });

    app.post('/posts/:id/comments', async (req, res) => {
      const postId = req.params.id;
      const { content } = parseBody(CreateCommentBody, req);
      // A post created a moment ago may not have reached us yet: ask the log before refusing.
      if (!state().hasPost(postId) && entityId.safeParse(postId).success) await projection.catchUp();
      if (!state().hasPost(postId)) {
        throw new AppError({ status: 404, code: 'post_not_found', message: `There is no post with id ${postId.slice(0, 100)}` });
      }
      const stored = await bus.publish(commentCreated(postId, content));
      await projection.deliver(stored).catch((error: unknown) => logger.warn({ err: error, seq: stored.seq }, 'applying own event deferred'));
      const comments = commentsOf(state(), postId);
      const { id, status } = stored.data as { id: string; status: 'pending' };
      const created = comments.some((comment) => comment.id === id) ? [] : [{ id, content, status }];
      res.status(201).json([...comments, ...created]);
    });
  }, receiveEvents(deps));
}
