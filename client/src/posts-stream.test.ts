import { liveEventNames, livePath } from '@blog/common/contract';
import { describe, expect, it, vi } from 'vitest';
import { pageSize } from './paging';
import { createEventSourceSubscriber, type EventSourceLike, type PostsStreamHandlers } from './posts-stream';
import { aComment, aLivePost, aPost, pageOf, withoutCursor } from './test-fakes';

/** Stands in for the browser's EventSource: the test dispatches the frames the server would send. */
class FakeEventSource extends EventTarget implements EventSourceLike {
  closed = false;
  constructor(readonly url: string) {
    super();
  }
  close() {
    this.closed = true;
  }
  send(eventName: string, data: string) {
    this.dispatchEvent(new MessageEvent(eventName, { data }));
  }
}

function subscribeToFake() {
  const sources: FakeEventSource[] = [];
  const subscribe = createEventSourceSubscriber((url) => {
    const source = new FakeEventSource(url);
    sources.push(source);
    return source;
  });
  const handlers = { onSnapshot: vi.fn(), onPost: vi.fn(), onError: vi.fn() } satisfies PostsStreamHandlers;
  const unsubscribe = subscribe(handlers);
  const source = sources[0];
  if (!source) throw new Error('no EventSource was opened');
  return { source, handlers, unsubscribe };
}

describe('createEventSourceSubscriber', () => {
  it('when subscribed, then it opens the live path asking for a snapshot of one page', () => {
    // Act
    const { source } = subscribeToFake();

    // Assert
    const url = new URL(source.url, 'http://blog.test');
    expect(url.pathname).toBe(livePath);
    expect(url.searchParams.get('limit')).toBe(String(pageSize));
  });

  it('when a snapshot and then a post arrive, then each goes to its handler parsed', () => {
    // Arrange
    const { source, handlers } = subscribeToFake();
    const page = pageOf([aPost({ comments: [aComment()] })], aLivePost().cursor);
    const post = aLivePost();

    // Act
    source.send(liveEventNames.snapshot, JSON.stringify(page));
    source.send(liveEventNames.post, JSON.stringify(post));

    // Assert
    expect(handlers.onSnapshot).toHaveBeenCalledExactlyOnceWith(page);
    expect(handlers.onPost).toHaveBeenCalledExactlyOnceWith(post);
    expect(handlers.onError).not.toHaveBeenCalled();
  });

  it('when the snapshot is the classic map of every post rather than a page, then it is an error', () => {
    // Arrange
    const { source, handlers } = subscribeToFake();
    const post = aPost();

    // Act
    source.send(liveEventNames.snapshot, JSON.stringify({ [post.id]: post }));

    // Assert
    expect(handlers.onSnapshot).not.toHaveBeenCalled();
    expect(handlers.onError).toHaveBeenCalledOnce();
  });

  it.each([
    ['has no cursor', withoutCursor(aLivePost())],
    ['has a cursor the page cannot order', { ...aLivePost(), cursor: 'opaque-token' }],
  ])('when a post frame %s, then it is an error, not passed on', (_case, post) => {
    // Arrange
    const { source, handlers } = subscribeToFake();

    // Act
    source.send(liveEventNames.post, JSON.stringify(post));

    // Assert
    expect(handlers.onPost).not.toHaveBeenCalled();
    expect(handlers.onError).toHaveBeenCalledOnce();
  });

  it('when the connection errors, then it closes the source and reports the error once', () => {
    // Arrange
    const { source, handlers } = subscribeToFake();

    // Act
    source.dispatchEvent(new Event('error'));
    source.dispatchEvent(new Event('error'));

    // Assert
    expect(source.closed).toBe(true);
    expect(handlers.onError).toHaveBeenCalledOnce();
  });

  it('when a frame is not the promised shape, then it is reported as an error, not passed on', () => {
    // Arrange
    const { source, handlers } = subscribeToFake();

    // Act
    source.send(liveEventNames.post, '{"id":"p1"}');

    // Assert
    expect(handlers.onPost).not.toHaveBeenCalled();
    expect(handlers.onError).toHaveBeenCalledOnce();
    expect(source.closed).toBe(true);
  });

  it('when unsubscribed, then the source is closed and later frames are ignored', () => {
    // Arrange
    const { source, handlers, unsubscribe } = subscribeToFake();

    // Act
    unsubscribe();
    source.send(liveEventNames.post, JSON.stringify(aLivePost()));

    // Assert
    expect(source.closed).toBe(true);
    expect(handlers.onPost).not.toHaveBeenCalled();
  });
});
