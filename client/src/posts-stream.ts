import { liveEventNames, livePath, type LiveComment, type LivePost, type PostsPage } from '@blog/common/contract';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { pageSize } from './paging';
import { isLiveComment, isLivePost, isPostsPage } from './view-guards';

/** Why a connection ended, as far as the client can tell. */
export interface StreamFailure {
  /** How long the server asked to be left alone (the Retry-After of its 503), when it said. */
  retryAfterMs?: number | undefined;
}

export interface PostsStreamHandlers {
  /** The newest page: sent first on every connection. */
  onSnapshot(page: PostsPage): void;
  /** A post that was created, wherever it sorts: new, on screen or not loaded. */
  onPost(post: LivePost): void;
  /** One comment of a post, new or with its status advanced: only what changed. */
  onComment(change: LiveComment): void;
  /**
   * The connection was refused, broke or sent something unreadable. It is closed already and sends
   * nothing more: the caller decides when to open a new one.
   */
  onError(failure: StreamFailure): void;
}

/** Opens one connection to the live view; the returned function closes it (calling it twice is fine). */
export type SubscribeToPosts = (handlers: PostsStreamHandlers) => () => void;

type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

// Wrapped rather than passed as `fetch` itself: called as a method of another object, the
// browser's fetch throws "Illegal invocation".
const browserFetch: FetchFunction = (input, init) => fetch(input, init);

/** Past this, a Retry-After is taken for a mistake rather than waited out. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * `GET /posts/stream?limit=N&frames=changes`, N the size of the older pages read on demand, read
 * with fetch rather than EventSource: EventSource hides an error answer's status and headers, so it
 * could not honour the 503 and Retry-After of a query process that serves as many streams as it
 * may. Reconnecting is left to the caller, after a refusal and a dropped connection alike: one
 * policy for both.
 */
export function createLiveStreamSubscriber(fetchFunction: FetchFunction = browserFetch): SubscribeToPosts {
  return (handlers) => {
    const query = new URLSearchParams({ limit: String(pageSize), frames: 'changes' });
    const connection = new AbortController();
    let closed = false;
    const close = () => {
      closed = true;
      connection.abort();
    };
    const fail = (failure: StreamFailure = {}) => {
      if (closed) return;
      close();
      handlers.onError(failure);
    };

    const dispatch = ({ event, data }: EventSourceMessage) => {
      if (closed) return;
      const value = parseJson(data);
      if (event === liveEventNames.snapshot) {
        if (isPostsPage(value)) handlers.onSnapshot(value);
        else fail();
      } else if (event === liveEventNames.post) {
        if (isLivePost(value)) handlers.onPost(value);
        else fail();
      } else if (event === liveEventNames.comment) {
        if (isLiveComment(value)) handlers.onComment(value);
        else fail();
      }
      // Other event names are a newer server's additions: ignored, like EventSource would.
    };

    void (async () => {
      const response = await fetchFunction(`${livePath}?${query.toString()}`, {
        headers: { accept: 'text/event-stream' },
        cache: 'no-store',
        signal: connection.signal,
      });
      if (!response.ok || !response.body || !(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        void response.body?.cancel().catch(() => undefined);
        fail({ retryAfterMs: response.status === 503 ? retryAfterMs(response.headers.get('retry-after')) : undefined });
        return;
      }
      const parser = createParser({ onEvent: dispatch });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      while (!closed) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
      // The server ended the stream (it is stopping, or dropped a reader that fell behind).
      fail();
    })().catch(() => fail());

    return close;
  };
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  const ms = /^\d+$/.test(value) ? Number(value) * 1_000 : Date.parse(value) - now;
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
