import type { CommentView, Post, PostView, PostsView } from '@blog/common/contract';
import { act } from '@testing-library/react';
import { vi } from 'vitest';
import { ApiRequestError, type BlogApi } from './api';
import type { PostsStreamHandlers, SubscribeToPosts } from './posts-stream';

/** Unique per call, so no test depends on another's data. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

export function aComment(overrides: Partial<CommentView> = {}): CommentView {
  return { id: uniqueId('comment'), content: `A comment ${uniqueId('text')}`, status: 'approved', ...overrides };
}

export function aPost(overrides: Partial<PostView> = {}): PostView {
  return { id: uniqueId('post'), title: `A post ${uniqueId('title')}`, comments: [], ...overrides };
}

export function viewOf(...posts: PostView[]): PostsView {
  return Object.fromEntries(posts.map((post) => [post.id, post]));
}

/** The live stream in memory: each `subscribe` is one connection the test can feed or break. */
export function createFakeStream() {
  const connections: Array<{ handlers: PostsStreamHandlers; closed: boolean }> = [];

  const subscribe: SubscribeToPosts = (handlers) => {
    const connection = { handlers, closed: false };
    connections.push(connection);
    return () => {
      connection.closed = true;
    };
  };

  function openConnection() {
    const connection = connections.at(-1);
    if (!connection || connection.closed) throw new Error('the page has no open stream connection');
    return connection;
  }

  return {
    subscribe,
    get connectionCount() {
      return connections.length;
    },
    get isOpen() {
      const connection = connections.at(-1);
      return connection !== undefined && !connection.closed;
    },
    sendSnapshot(view: PostsView) {
      const { handlers } = openConnection();
      act(() => handlers.onSnapshot(view));
    },
    sendPost(post: PostView) {
      const { handlers } = openConnection();
      act(() => handlers.onPost(post));
    },
    fail() {
      const connection = openConnection();
      connection.closed = true;
      act(() => connection.handlers.onError());
    },
  };
}

export type FakeStream = ReturnType<typeof createFakeStream>;

/** An API whose calls succeed the way the real one does; a test changes a method with `mock…`. */
export function createFakeApi() {
  const commentsByPost = new Map<string, CommentView[]>();
  return {
    createPost: vi.fn<BlogApi['createPost']>((title) => Promise.resolve<Post>({ id: uniqueId('post'), title })),
    createComment: vi.fn<BlogApi['createComment']>((postId, content) => {
      const comments = [...(commentsByPost.get(postId) ?? []), aComment({ content, status: 'pending' })];
      commentsByPost.set(postId, comments);
      return Promise.resolve(comments);
    }),
  } satisfies BlogApi;
}

export function aValidationError(field: string, message: string): ApiRequestError {
  return new ApiRequestError({ code: 'invalid_request', status: 400, message: `${field}: ${message}`, fieldErrors: { [field]: message } });
}

/** A promise the test settles by hand, to look at the page while a request is on its way. */
export function createDeferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((resolvePromise, rejectPromise) => {
    resolve = resolvePromise;
    reject = rejectPromise;
  });
  return { promise, resolve, reject };
}
