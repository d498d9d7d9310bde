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

/** A `comment` frame of the live stream: one comment of a post as it is now (new, or its status advanced). */
export interface LiveComment {
  postId: string;
  /** The post's cursor, as in a `LivePost`. */
  cursor: string;
  comment: CommentView;
}

/**
 * What a live client gets when a comment changes (`?frames=`): `posts` (the default, the classic
 * frames) a `post` frame with the whole post again; `changes` a `comment` frame with only that
 * comment, merged like any other source (comments only added, statuses only advanced).
 */
export const liveFrameKinds = ['posts', 'changes'] as const;
export type LiveFrameKind = (typeof liveFrameKinds)[number];

/**
 * `GET /posts/stream` on query: server-sent events. `snapshot` carries the newest page (a
 * `PostsPage`, `?limit=N` as on `GET /posts`) on every connect; `post` one post that was created,
 * or whose comments changed (a `LivePost`), wherever it sorts; `comment` (only with
 * `?frames=changes`, instead of `post` for a comment change) one comment (a `LiveComment`). Each
 * `id:` is the log sequence. When the process already serves as many streams as it may, it answers
 * 503 with `Retry-After` (seconds) instead.
 */
export const liveEventNames = { snapshot: 'snapshot', post: 'post', comment: 'comment' } as const;
export const livePath = '/posts/stream';
