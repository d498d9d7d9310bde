import { liveEventNames, livePath, type PostView, type PostsView } from '@blog/common/contract';
import { isPostView, isPostsView } from './view-guards';

export interface PostsStreamHandlers {
  /** The whole view: sent first on every connection. */
  onSnapshot(view: PostsView): void;
  /** One post whose title or comments changed. */
  onPost(post: PostView): void;
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
 * `GET /posts/stream` through `EventSource`. Reconnecting is left to the caller: after an error
 * answer (the gateway's 502/503) the browser closes the source for good, and after a dropped
 * connection it retries on its own schedule, so one policy for both needs our own.
 */
export function createEventSourceSubscriber(
  openEventSource: (url: string) => EventSourceLike = (url) => new EventSource(url),
): SubscribeToPosts {
  return (handlers) => {
    const source = openEventSource(livePath);
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
      const view = parseData(event);
      if (closed) return;
      if (isPostsView(view)) handlers.onSnapshot(view);
      else fail();
    });
    source.addEventListener(liveEventNames.post, (event) => {
      const post = parseData(event);
      if (closed) return;
      if (isPostView(post)) handlers.onPost(post);
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
