import type { CommentStatus } from './events.js';

/** Shapes of the public API's answers (the classic contract), shared by services, tests and the client. */

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
