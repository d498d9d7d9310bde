import { newId, type EventEnvelope, type EventOf, type Post, type ProjectionSpec } from '@blog/common';

export interface PostsState {
  posts: Map<string, Post>;
}

/** The event that creating a post publishes; the post exists once the bus has stored it. */
export function postCreated(title: string): EventOf<'PostCreated'> {
  return { type: 'PostCreated', data: { id: newId(), title } };
}

export function applyPostEvent(state: PostsState, event: EventEnvelope): boolean {
  if (event.type !== 'PostCreated' || state.posts.has(event.data.id)) return false;
  state.posts.set(event.data.id, { id: event.data.id, title: event.data.title });
  return true;
}

export const postsProjection: ProjectionSpec<PostsState> = {
  initialState: () => ({ posts: new Map() }),
  apply: applyPostEvent,
  toSnapshot: (state) => [...state.posts.values()],
  fromSnapshot: (snapshot) => ({ posts: new Map((snapshot as Post[]).map((post) => [post.id, post])) }),
};
