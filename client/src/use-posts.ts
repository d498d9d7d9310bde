import type { CommentView, Post, PostView } from '@blog/common/contract';
import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiRequestError, type BlogApi } from './api';
import {
  applyCreatedComments,
  applyCreatedPost,
  applyLiveComment,
  applyLivePost,
  applyOlderPage,
  applySnapshot,
  emptyFeed,
  failLoadingOlder,
  nextPageRequest,
  retryDelayMs,
  shownPosts,
  startLoadingOlder,
  type PostsFeed,
} from './live-posts';
import type { SubscribeToPosts } from './posts-stream';

/** `connecting` before the first snapshot, `offline` from an error until a snapshot arrives again. */
export type ConnectionState = 'connecting' | 'live' | 'offline';

/** The state of the posts below the ones on screen. */
export interface OlderPosts {
  /** False once the oldest post is on screen. */
  available: boolean;
  loading: boolean;
  /** Why the last attempt failed, for the reader; undefined once another one starts. */
  error: string | undefined;
}

export interface LivePosts {
  /** Newest first. */
  posts: PostView[];
  /** False until the first snapshot: an empty `posts` means "not known yet", not "no posts". */
  loaded: boolean;
  connection: ConnectionState;
  older: OlderPosts;
  /** Reads the next older page (or goes on refreshing the ones read before a reconnect). */
  loadOlder: () => void;
  /** Reconnects at once instead of waiting for the next scheduled attempt. */
  retryNow: () => void;
  showCreatedPost: (post: Post) => void;
  showCreatedComments: (postId: string, comments: readonly CommentView[]) => void;
}

/**
 * The live view of the newest posts, and of the older pages read on demand: the stream's events,
 * the pages and this tab's own POST answers, merged. `subscribe` must keep its identity across
 * renders: a new one opens a new connection.
 */
export function usePosts(subscribe: SubscribeToPosts, api: Pick<BlogApi, 'getPostsPage'>): LivePosts {
  const [feed, setFeed] = useState<PostsFeed>(emptyFeed);
  const [loaded, setLoaded] = useState(false);
  const [connection, setConnection] = useState<ConnectionState>('connecting');
  // Each new value opens a new connection (the effect below re-runs).
  const [connectionAttempt, setConnectionAttempt] = useState(0);
  const failuresInARow = useRef(0);
  const lastRequestId = useRef(0);

  useEffect(() => {
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    // False once this connection failed or was replaced: its late events must not touch the state.
    let current = true;

    const unsubscribe = subscribe({
      onSnapshot(page) {
        if (!current) return;
        failuresInARow.current = 0;
        setFeed((shown) => applySnapshot(shown, page));
        setLoaded(true);
        setConnection('live');
      },
      onPost(post) {
        if (!current) return;
        setFeed((shown) => applyLivePost(shown, post));
      },
      onComment(change) {
        if (!current) return;
        setFeed((shown) => applyLiveComment(shown, change));
      },
      onError({ retryAfterMs }) {
        if (!current) return;
        current = false;
        setConnection('offline');
        const delay = retryDelayMs(failuresInARow.current, retryAfterMs);
        failuresInARow.current += 1;
        retryTimer = setTimeout(() => setConnectionAttempt((attempt) => attempt + 1), delay);
      },
    });

    return () => {
      current = false;
      clearTimeout(retryTimer);
      unsubscribe();
    };
  }, [subscribe, connectionAttempt]);

  const loadOlder = useCallback(() => {
    const request = nextPageRequest(feed, lastRequestId.current + 1);
    if (!request) return;
    lastRequestId.current = request.id;
    setFeed((shown) => startLoadingOlder(shown, request));
    void api.getPostsPage({ before: request.before, limit: request.limit }).then(
      (page) => setFeed((shown) => applyOlderPage(shown, request, page)),
      (error: unknown) => setFeed((shown) => failLoadingOlder(shown, request, describeFailure(error))),
    );
  }, [feed, api]);

  // After a reconnect, the pages read before it are read again at once (see `applySnapshot`); after
  // a failure, the reader retries with the button, or the next reconnect does.
  const refreshDue = feed.stale !== null && feed.older.status === 'idle';
  useEffect(() => {
    if (refreshDue) loadOlder();
  }, [refreshDue, loadOlder]);

  const retryNow = useCallback(() => setConnectionAttempt((attempt) => attempt + 1), []);
  const showCreatedPost = useCallback((post: Post) => setFeed((shown) => applyCreatedPost(shown, post)), []);
  const showCreatedComments = useCallback(
    (postId: string, comments: readonly CommentView[]) =>
      setFeed((shown) => applyCreatedComments(shown, postId, comments)),
    [],
  );

  const older: OlderPosts = {
    available: feed.nextCursor !== null,
    loading: feed.older.status === 'loading',
    error: feed.older.status === 'failed' ? feed.older.message : undefined,
  };
  return { posts: shownPosts(feed), loaded, connection, older, loadOlder, retryNow, showCreatedPost, showCreatedComments };
}

function describeFailure(error: unknown): string {
  if (error instanceof ApiRequestError) return error.message;
  // A bug rather than a failed request: still tell the reader, and keep the details for us.
  console.error(error);
  return 'Something went wrong. Try again.';
}
