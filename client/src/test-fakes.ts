import type { CommentView, LiveComment, LivePost, Post, PostView, PostsPage } from '@blog/common/contract';
import { act } from '@testing-library/react';
import { vi } from 'vitest';
import { ApiRequestError, type BlogApi, type PageQuery } from './api';
import { pageSize } from './paging';
import type { PostsStreamHandlers, StreamFailure, SubscribeToPosts } from './posts-stream';

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

// Starts one digit short, so cursors soon need a digit more: "10" must sort above "9".
let lastCursor = 7;

/** A post as a live frame carries it; each call's cursor sorts above every one handed out before. */
export function aLivePost(overrides: Partial<PostView> = {}): LivePost {
  lastCursor += 1;
  return { ...aPost(overrides), cursor: String(lastCursor) };
}

export function withoutCursor({ id, title, comments }: LivePost): PostView {
  return { id, title, comments };
}

/** A page as the snapshot or `GET /posts?limit=N` sends it. */
export function pageOf(posts: readonly PostView[], nextCursor: string | null = null): PostsPage {
  return { posts: [...posts], nextCursor };
}

/**
 * The query service's posts in memory, paged the way it pages them: newest first, `before`
 * exclusive, `nextCursor` the cursor of a page's last post while older ones remain.
 */
export function createFakeHistory(count = 0) {
  /** Oldest first. */
  const posts: LivePost[] = Array.from({ length: count }, () => aLivePost());

  function page({ before, limit }: { before?: string; limit: number }): PostsPage {
    const below = posts.filter((post) => before === undefined || Number(post.cursor) < Number(before)).reverse();
    const shown = below.slice(0, limit);
    return { posts: shown.map(withoutCursor), nextCursor: below.length > limit ? shown.at(-1)!.cursor : null };
  }

  return {
    posts,
    page,
    newestPage: (limit = pageSize) => page({ limit }),
    add(overrides: Partial<PostView> = {}): LivePost {
      const post = aLivePost(overrides);
      posts.push(post);
      return post;
    },
    /** Changes a post as the server would and returns the frame the stream sends for it. */
    update(id: string, change: (post: PostView) => Partial<PostView>): LivePost {
      const index = posts.findIndex((post) => post.id === id);
      if (index < 0) throw new Error(`no post ${id} in the history`);
      const post = posts[index]!;
      const updated = { ...post, ...change(withoutCursor(post)) };
      posts[index] = updated;
      return updated;
    },
  };
}

export type FakeHistory = ReturnType<typeof createFakeHistory>;

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
    sendSnapshot(page: PostsPage) {
      const { handlers } = openConnection();
      act(() => handlers.onSnapshot(page));
    },
    sendPost(post: LivePost) {
      const { handlers } = openConnection();
      act(() => handlers.onPost(post));
    },
    sendComment(change: LiveComment) {
      const { handlers } = openConnection();
      act(() => handlers.onComment(change));
    },
    /** The connection breaks, or is refused (`failure.retryAfterMs`: a full server's 503). */
    fail(failure: StreamFailure = {}) {
      const connection = openConnection();
      connection.closed = true;
      act(() => connection.handlers.onError(failure));
    },
  };
}

export type FakeStream = ReturnType<typeof createFakeStream>;

/**
 * An API whose calls succeed the way the real one does, its pages read from `history`; a test
 * changes a method with `mock…`.
 */
export function createFakeApi(history: FakeHistory = createFakeHistory()) {
  const commentsByPost = new Map<string, CommentView[]>();
  return {
    getPostsPage: vi.fn<BlogApi['getPostsPage']>((query: PageQuery) => Promise.resolve(history.page(query))),
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
