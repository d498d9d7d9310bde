import type { CommentView, Post, PostsView } from '@blog/common/contract';
import { useCallback, useEffect, useRef, useState } from 'react';
import {
  applyCreatedComments,
  applyCreatedPost,
  applyPostEvent,
  applySnapshot,
  retryDelayMs,
} from './live-posts';
import type { SubscribeToPosts } from './posts-stream';

/** `connecting` before the first snapshot, `offline` from an error until a snapshot arrives again. */
export type ConnectionState = 'connecting' | 'live' | 'offline';

export interface LivePosts {
  posts: PostsView;
  /** False until the first snapshot: an empty `posts` means "not known yet", not "no posts". */
  loaded: boolean;
  connection: ConnectionState;
  /** Reconnects at once instead of waiting for the next scheduled attempt. */
  retryNow: () => void;
  showCreatedPost: (post: Post) => void;
  showCreatedComments: (postId: string, comments: readonly CommentView[]) => void;
}

/**
 * The live view of all posts: the stream's events and this tab's own POST answers, merged.
 * `subscribe` must keep its identity across renders: a new one opens a new connection.
 */
export function usePosts(subscribe: SubscribeToPosts): LivePosts {
  const [posts, setPosts] = useState<PostsView>({});
  const [loaded, setLoaded] = useState(false);
  const [connection, setConnection] = useState<ConnectionState>('connecting');
  // Each new value opens a new connection (the effect below re-runs).
  const [connectionAttempt, setConnectionAttempt] = useState(0);
  const failuresInARow = useRef(0);

  useEffect(() => {
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    // False once this connection failed or was replaced: its late events must not touch the state.
    let current = true;

    const unsubscribe = subscribe({
      onSnapshot(view) {
        if (!current) return;
        failuresInARow.current = 0;
        setPosts((shown) => applySnapshot(shown, view));
        setLoaded(true);
        setConnection('live');
      },
      onPost(post) {
        if (!current) return;
        setPosts((shown) => applyPostEvent(shown, post));
      },
      onError() {
        if (!current) return;
        current = false;
        setConnection('offline');
        const delay = retryDelayMs(failuresInARow.current);
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

  const retryNow = useCallback(() => setConnectionAttempt((attempt) => attempt + 1), []);
  const showCreatedPost = useCallback((post: Post) => setPosts((shown) => applyCreatedPost(shown, post)), []);
  const showCreatedComments = useCallback(
    (postId: string, comments: readonly CommentView[]) =>
      setPosts((shown) => applyCreatedComments(shown, postId, comments)),
    [],
  );

  return { posts, loaded, connection, retryNow, showCreatedPost, showCreatedComments };
}
