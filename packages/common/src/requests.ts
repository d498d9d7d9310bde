import { z } from 'zod';
import { liveFrameKinds, postsPageLimits } from './contract.js';
import { commentContent, entityId, postTitle } from './limits.js';

/** Bodies and params of the public API, shared by the services and the tests. */
export const CreatePostBody = z.object({ title: postTitle });
export type CreatePostBody = z.infer<typeof CreatePostBody>;

export const CreateCommentBody = z.object({ content: commentContent });
export type CreateCommentBody = z.infer<typeof CreateCommentBody>;

export const PostIdParams = z.object({ id: entityId });

export const EventPageQuery = z.object({
  after: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  /** Long poll: wait up to this many ms for an event after `after` when there is none yet. */
  wait: z.coerce.number().int().min(0).max(30_000).optional(),
});
export type EventPageQuery = z.infer<typeof EventPageQuery>;

/**
 * `GET /posts?limit=N&before=CURSOR` on query. A cursor is the decimal position of a post in the
 * log (see `PostsPage`); anything else is refused rather than guessed at.
 */
export const PostsPageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(postsPageLimits.maxLimit).default(postsPageLimits.defaultLimit),
  before: z.string().regex(/^[1-9][0-9]{0,15}$/, 'must be a cursor from an earlier page').optional(),
});
export type PostsPageQuery = z.infer<typeof PostsPageQuery>;

/** `GET /posts/stream?limit=N&frames=KIND`: the snapshot's size as on `GET /posts`, and which frames report a comment change. */
export const LiveStreamQuery = PostsPageQuery.extend({
  frames: z.enum(liveFrameKinds).default('posts'),
});
export type LiveStreamQuery = z.infer<typeof LiveStreamQuery>;
