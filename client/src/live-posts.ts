import { isStatusAdvance, type CommentView, type Post, type PostView, type PostsView } from '@blog/common/contract';

/*
 * The page learns about the same posts from three sources that race each other: the stream's
 * snapshot, the stream's `post` events, and the answers to this tab's own POSTs. None of them is
 * guaranteed to be the newest (the comments service answers before the query service has caught
 * up; a reconnect's snapshot can predate a comment we just created). Because the blog never
 * deletes anything and a status only moves forward, every source can be merged the same way:
 * posts and comments are only ever added, and a comment's status only ever advances. Then the
 * order in which answers arrive no longer matters.
 */

/** The status to show when one source says `shown` and another says `incoming`. */
function laterStatus(shown: CommentView['status'], incoming: CommentView['status']): CommentView['status'] {
  return isStatusAdvance(shown, incoming) ? incoming : shown;
}

/** Comments in the incoming order, then any the incoming list does not know about yet. */
export function mergeComments(shown: readonly CommentView[], incoming: readonly CommentView[]): CommentView[] {
  const shownById = new Map(shown.map((comment) => [comment.id, comment]));
  const merged = incoming.map((comment) => {
    const known = shownById.get(comment.id);
    return known ? { ...comment, status: laterStatus(known.status, comment.status) } : comment;
  });
  const incomingIds = new Set(incoming.map((comment) => comment.id));
  return [...merged, ...shown.filter((comment) => !incomingIds.has(comment.id))];
}

export function mergePost(shown: PostView | undefined, incoming: PostView): PostView {
  if (!shown) return incoming;
  return { ...incoming, comments: mergeComments(shown.comments, incoming.comments) };
}

/** A `post` stream event: that post takes the incoming title and comments, merged as above. */
export function applyPostEvent(view: PostsView, post: PostView): PostsView {
  return { ...view, [post.id]: mergePost(view[post.id], post) };
}

/** A `snapshot` stream event: the snapshot's posts in its order, then any it does not have yet. */
export function applySnapshot(view: PostsView, snapshot: PostsView): PostsView {
  const merged: PostsView = {};
  for (const post of Object.values(snapshot)) merged[post.id] = mergePost(view[post.id], post);
  for (const post of Object.values(view)) merged[post.id] ??= post;
  return merged;
}

/** The 201 of `POST /posts/create`: show the new post before the stream reports it. */
export function applyCreatedPost(view: PostsView, post: Post): PostsView {
  if (view[post.id]) return view;
  return { ...view, [post.id]: { id: post.id, title: post.title, comments: [] } };
}

/**
 * The 201 of `POST /posts/:id/comments`: the whole comment list, the new one `pending`. The stream
 * may already have delivered a verdict for it, which must not be taken back.
 */
export function applyCreatedComments(view: PostsView, postId: string, comments: readonly CommentView[]): PostsView {
  const post = view[postId];
  // Only reachable from a post on screen; if it is gone, the stream's next snapshot has the truth.
  if (!post) return view;
  return { ...view, [postId]: { ...post, comments: mergeComments(post.comments, comments) } };
}

const FIRST_RETRY_DELAY_MS = 1_000;
const MAX_RETRY_DELAY_MS = 10_000;

/** How long to wait before reconnecting after `failures` failed attempts in a row: 1 s, 2 s, 4 s, 8 s, 10 s, 10 s… */
export function retryDelayMs(failures: number): number {
  return Math.min(FIRST_RETRY_DELAY_MS * 2 ** failures, MAX_RETRY_DELAY_MS);
}
