import { newId, type EventEnvelope, type EventOf, type Post, type ProjectionSpec } from '@blog/common';
import { openPostsTable, type PostsTable } from '../posts-table.js';

export type PostsState = PostsTable;

/** The event that creating a post publishes; the post exists once the bus has stored it. */
export function postCreated(title: string): EventOf<'PostCreated'> {
  return { type: 'PostCreated', data: { id: newId(), title } };
}

/** A post is kept once, in the order the log created it; every other event is not ours. */
export function applyPostEvent(posts: PostsState, event: EventEnvelope): boolean {
  if (event.type !== 'PostCreated' || posts.has(event.data.id)) return false;
  const post: Post = { id: event.data.id, title: event.data.title };
  posts.add(post, event.seq);
  return true;
}

export const postsProjection: ProjectionSpec<PostsState> = {
  open: openPostsTable,
  apply: applyPostEvent,
};
