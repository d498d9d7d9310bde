import { liveEventNames, livePath } from '@blog/common/contract';
import { describe, expect, it, vi } from 'vitest';
import { createEventSourceSubscriber, type EventSourceLike, type PostsStreamHandlers } from './posts-stream';
import { aComment, aPost, viewOf } from './test-fakes';

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
  it('when subscribed, then it opens the live path', () => {
    // Act
    const { source } = subscribeToFake();

    // Assert
    expect(source.url).toBe(livePath);
  });

  it('when a snapshot and then a post arrive, then each goes to its handler parsed', () => {
    // Arrange
    const { source, handlers } = subscribeToFake();
    const view = viewOf(aPost({ comments: [aComment()] }));
    const post = aPost();

    // Act
    source.send(liveEventNames.snapshot, JSON.stringify(view));
    source.send(liveEventNames.post, JSON.stringify(post));

    // Assert
    expect(handlers.onSnapshot).toHaveBeenCalledExactlyOnceWith(view);
    expect(handlers.onPost).toHaveBeenCalledExactlyOnceWith(post);
    expect(handlers.onError).not.toHaveBeenCalled();
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
    source.send(liveEventNames.post, JSON.stringify(aPost()));

    // Assert
    expect(source.closed).toBe(true);
    expect(handlers.onPost).not.toHaveBeenCalled();
  });
});
