/**
 * The public API's shapes and rules that need no library: shared by the services, the tests and the
 * browser client (import from `@blog/common/contract`, which pulls in nothing from Node).
 */

export const commentStatuses = ['pending', 'approved', 'rejected'] as const;
export type CommentStatus = (typeof commentStatuses)[number];

/** A status only moves forward: pending is the only state that can still change. */
export function isStatusAdvance(from: CommentStatus, to: CommentStatus): boolean {
  return from === 'pending' && to !== 'pending';
}

/** Documented input limits (README, "Limits"). */
export const limits = {
  titleMaxLength: 200,
  contentMaxLength: 2000,
  bodyMaxBytes: 100 * 1024,
  idMaxLength: 64,
} as const;

export interface CommentView {
  id: string;
  content: string;
  status: CommentStatus;
}

/** One post as the query service shows it. */
export interface PostView {
  id: string;
  title: string;
  comments: CommentView[];
}

/** `GET /posts` on query: every post by id. */
export type PostsView = Record<string, PostView>;

/** `POST /posts/create` and `GET /posts` on posts. */
export interface Post {
  id: string;
  title: string;
}

/** Every error answer. */
export interface ApiError {
  error: { code: string; message: string; details?: Array<{ path: string; message: string }> };
}

/**
 * `GET /posts?limit=N&before=CURSOR` on query: one page of posts, newest first, in the classic item
 * shape, strictly older than the cursor's own post. `nextCursor` is what to pass as `before` for the
 * next (older) page, null after the oldest.
 * Take cursors from a page or a live frame, never build one. They are decimal integers, and a
 * larger one sorts newer: that is how a client tells a new post from an old one it has not loaded.
 */
export interface PostsPage {
  posts: PostView[];
  nextCursor: string | null;
}

export const postsPageLimits = { defaultLimit: 20, maxLimit: 100 } as const;

/** A `post` frame of the live stream: the post as it is now, with its cursor (where it sorts among pages). */
export type LivePost = PostView & { cursor: string };

/**
 * `GET /posts/stream` on query: server-sent events. `snapshot` carries the newest page (a
 * `PostsPage`, `?limit=N` as on `GET /posts`) on every connect, `post` one post whose title or
 * comments changed (a `LivePost`), wherever it sorts; each `id:` is the log sequence.
 */
export const liveEventNames = { snapshot: 'snapshot', post: 'post' } as const;
export const livePath = '/posts/stream';
