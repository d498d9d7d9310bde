import { z } from 'zod';
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
