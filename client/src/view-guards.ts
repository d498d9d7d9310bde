import { commentStatuses, type ApiError, type CommentView, type LiveComment, type LivePost, type Post, type PostView, type PostsPage } from '@blog/common/contract';
import { isCursor } from './paging';

/*
 * Whatever comes over the wire is only trusted once it has the shape the contract promises: a
 * gateway error page or a half-deployed service must show up as an error, not as a broken render.
 */

type Fields = Record<string, unknown>;

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isCommentView(value: unknown): value is CommentView {
  return (
    isObject(value) &&
    typeof value.id === 'string' &&
    typeof value.content === 'string' &&
    commentStatuses.some((status) => status === value.status)
  );
}

export function isCommentViews(value: unknown): value is CommentView[] {
  return Array.isArray(value) && value.every(isCommentView);
}

export function isPost(value: unknown): value is Post {
  return isObject(value) && typeof value.id === 'string' && typeof value.title === 'string';
}

export function isPostView(value: unknown): value is PostView {
  return isObject(value) && isPost(value) && isCommentViews(value.comments);
}

/** Cursors are checked for the form the page compares them in (see `compareCursors`). */
export function isPostsPage(value: unknown): value is PostsPage {
  return (
    isObject(value) &&
    Array.isArray(value.posts) &&
    value.posts.every(isPostView) &&
    (value.nextCursor === null || isCursor(value.nextCursor))
  );
}

export function isLivePost(value: unknown): value is LivePost {
  return isObject(value) && isCursor(value.cursor) && isPostView(value);
}

export function isLiveComment(value: unknown): value is LiveComment {
  return isObject(value) && typeof value.postId === 'string' && isCursor(value.cursor) && isCommentView(value.comment);
}

export function isApiError(value: unknown): value is ApiError {
  if (!isObject(value) || !isObject(value.error)) return false;
  const { code, message, details } = value.error;
  return (
    typeof code === 'string' &&
    typeof message === 'string' &&
    (details === undefined ||
      (Array.isArray(details) &&
        details.every((detail) => isObject(detail) && typeof detail.path === 'string' && typeof detail.message === 'string')))
  );
}
