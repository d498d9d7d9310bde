import { liveEventNames, livePath, type LivePost, type PostsPage } from '@blog/common/contract';
import { pageSize } from './paging';
import { isLivePost, isPostsPage } from './view-guards';

export interface PostsStreamHandlers {
  /** The newest page: sent first on every connection. */
  onSnapshot(page: PostsPage): void;
  /** One post whose title or comments changed, wherever it sorts: new, on screen or not loaded. */
  onPost(post: LivePost): void;
  /**
   * The connection broke or sent something unreadable. It is closed already and sends nothing
   * more: the caller decides when to open a new one.
   */
  onError(): void;
}

/** Opens one connection to the live view; the returned function closes it (calling it twice is fine). */
export type SubscribeToPosts = (handlers: PostsStreamHandlers) => () => void;

/** The parts of `EventSource` used here, so tests can pass a stand-in. */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: Event) => void): void;
  close(): void;
}

/**
 * `GET /posts/stream?limit=N` through `EventSource`, N the size of the older pages read on demand.
 * Reconnecting is left to the caller: after an error answer (the gateway's 502/503) the browser
 * closes the source for good, and after a dropped connection it retries on its own schedule, so one
 * policy for both needs our own.
 */
export function createEventSourceSubscriber(
  openEventSource: (url: string) => EventSourceLike = (url) => new EventSource(url),
): SubscribeToPosts {
  return (handlers) => {
    const source = openEventSource(`${livePath}?${new URLSearchParams({ limit: String(pageSize) }).toString()}`);
    let closed = false;
    const close = () => {
      closed = true;
      source.close();
    };
    const fail = () => {
      if (closed) return;
      close();
      handlers.onError();
    };

    source.addEventListener(liveEventNames.snapshot, (event) => {
      const page = parseData(event);
      if (closed) return;
      if (isPostsPage(page)) handlers.onSnapshot(page);
      else fail();
    });
    source.addEventListener(liveEventNames.post, (event) => {
      const post = parseData(event);
      if (closed) return;
      if (isLivePost(post)) handlers.onPost(post);
      else fail();
    });
    source.addEventListener('error', fail);

    return close;
  };
}

function parseData(event: Event): unknown {
  if (!(event instanceof MessageEvent) || typeof event.data !== 'string') return undefined;
  try {
    return JSON.parse(event.data);
  } catch {
    return undefined;
  }
}
