import { liveEventNames, livePath, type LiveComment } from '@blog/common/contract';
import { describe, expect, it, vi } from 'vitest';
import { pageSize } from './paging';
import { createLiveStreamSubscriber, retryAfterMs, type PostsStreamHandlers } from './posts-stream';
import { aComment, aLivePost, aPost, pageOf, withoutCursor } from './test-fakes';

/** A server-sent events answer whose body the test writes as the server would, chunk by chunk. */
function eventStreamAnswer() {
  const body = new TransformStream<Uint8Array, Uint8Array>();
  const writer = body.writable.getWriter();
  const encoder = new TextEncoder();
  return {
    response: new Response(body.readable, { status: 200, headers: { 'content-type': 'text/event-stream; charset=utf-8' } }),
    /** Writes raw text: a frame, part of one, or several. */
    write: (text: string) => writer.write(encoder.encode(text)),
    frame: (eventName: string, data: string, id = '1') => writer.write(encoder.encode(`id: ${id}\nevent: ${eventName}\ndata: ${data}\n\n`)),
    end: () => writer.close(),
  };
}

function subscribeWith(answer: Response | Promise<Response>) {
  const requests: Array<{ url: string; init: RequestInit }> = [];
  const subscribe = createLiveStreamSubscriber((url, init) => {
    requests.push({ url, init });
    return Promise.resolve(answer);
  });
  const handlers = { onSnapshot: vi.fn(), onPost: vi.fn(), onComment: vi.fn(), onError: vi.fn() } satisfies PostsStreamHandlers;
  const unsubscribe = subscribe(handlers);
  return { requests, handlers, unsubscribe };
}

const aLiveComment = (): LiveComment => ({ postId: aPost().id, cursor: aLivePost().cursor, comment: aComment({ status: 'pending' }) });

describe('createLiveStreamSubscriber', () => {
  it('when subscribed, then it asks the live path for a snapshot of one page and change frames, as an event stream', () => {
    // Act
    const { requests } = subscribeWith(eventStreamAnswer().response);

    // Assert
    expect(requests).toHaveLength(1);
    const url = new URL(requests[0]!.url, 'http://blog.test');
    expect(url.pathname).toBe(livePath);
    expect(Object.fromEntries(url.searchParams)).toEqual({ limit: String(pageSize), frames: 'changes' });
    expect(requests[0]!.init).toMatchObject({ headers: { accept: 'text/event-stream' }, cache: 'no-store' });
  });

  it('when a snapshot, a comment and a post arrive, split across chunks anyhow, then each goes to its handler parsed', async () => {
    // Arrange
    const answer = eventStreamAnswer();
    const { handlers } = subscribeWith(answer.response);
    const page = pageOf([aPost({ comments: [aComment()] })], aLivePost().cursor);
    const change = aLiveComment();
    const post = aLivePost();
    const frames = [
      `event: ${liveEventNames.snapshot}\ndata: ${JSON.stringify(page)}\n\n`,
      `: keep-alive\n\n`,
      `event: ${liveEventNames.comment}\ndata: ${JSON.stringify(change)}\n\n`,
      `event: ${liveEventNames.post}\ndata: ${JSON.stringify(post)}\n\n`,
    ].join('');

    // Act
    for (let at = 0; at < frames.length; at += 97) await answer.write(frames.slice(at, at + 97));

    // Assert
    await vi.waitFor(() => expect(handlers.onPost).toHaveBeenCalled());
    expect(handlers.onSnapshot).toHaveBeenCalledExactlyOnceWith(page);
    expect(handlers.onComment).toHaveBeenCalledExactlyOnceWith(change);
    expect(handlers.onPost).toHaveBeenCalledExactlyOnceWith(post);
    expect(handlers.onError).not.toHaveBeenCalled();
  });

  it('when the server is full and answers 503 with Retry-After, then it reports the error once with how long to wait', async () => {
    // Arrange
    const refusal = new Response(JSON.stringify({ error: { code: 'too_many_streams', message: 'full' } }), {
      status: 503,
      headers: { 'content-type': 'application/json', 'retry-after': '12' },
    });

    // Act
    const { handlers } = subscribeWith(refusal);

    // Assert
    await vi.waitFor(() => expect(handlers.onError).toHaveBeenCalled());
    expect(handlers.onError).toHaveBeenCalledExactlyOnceWith({ retryAfterMs: 12_000 });
    expect(handlers.onSnapshot).not.toHaveBeenCalled();
  });

  it.each([
    ['a 502 from the gateway', () => new Response('<html>Bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } })],
    ['a 200 that is not an event stream', () => new Response('<html>Not the stream</html>', { status: 200, headers: { 'content-type': 'text/html' } })],
  ])('when the answer is %s, then it reports the error once, with no wait asked for', async (_case, answerOf) => {
    // Act
    const { handlers } = subscribeWith(answerOf());

    // Assert
    await vi.waitFor(() => expect(handlers.onError).toHaveBeenCalled());
    expect(handlers.onError).toHaveBeenCalledExactlyOnceWith({ retryAfterMs: undefined });
  });

  it('when the request fails without an answer, then it reports the error once', async () => {
    // Act
    const { handlers } = subscribeWith(Promise.reject(new TypeError('Failed to fetch')));

    // Assert
    await vi.waitFor(() => expect(handlers.onError).toHaveBeenCalled());
    expect(handlers.onError).toHaveBeenCalledExactlyOnceWith({});
  });

  it('when the server ends the stream, then it reports the error once', async () => {
    // Arrange
    const answer = eventStreamAnswer();
    const { handlers } = subscribeWith(answer.response);
    await answer.frame(liveEventNames.snapshot, JSON.stringify(pageOf([])));

    // Act
    await answer.end();

    // Assert
    await vi.waitFor(() => expect(handlers.onError).toHaveBeenCalled());
    expect(handlers.onSnapshot).toHaveBeenCalledOnce();
    expect(handlers.onError).toHaveBeenCalledOnce();
  });

  it.each([
    ['a snapshot that is the classic map of every post', liveEventNames.snapshot, () => JSON.stringify({ [aPost().id]: aPost() })],
    ['a post frame without a cursor', liveEventNames.post, () => JSON.stringify(withoutCursor(aLivePost()))],
    ['a post frame with a cursor the page cannot order', liveEventNames.post, () => JSON.stringify({ ...aLivePost(), cursor: 'opaque-token' })],
    ['a comment frame without its comment', liveEventNames.comment, () => JSON.stringify({ postId: 'p1', cursor: '1' })],
    ['a frame that is not JSON', liveEventNames.post, () => '{"id":'],
  ])('when the stream sends %s, then it is an error, not passed on, and nothing more is read', async (_case, eventName, dataOf) => {
    // Arrange
    const answer = eventStreamAnswer();
    const { handlers } = subscribeWith(answer.response);

    // Act
    await answer.frame(eventName, dataOf());
    void answer.frame(liveEventNames.comment, JSON.stringify(aLiveComment()));

    // Assert
    await vi.waitFor(() => expect(handlers.onError).toHaveBeenCalled());
    expect(handlers.onError).toHaveBeenCalledOnce();
    expect([handlers.onSnapshot, handlers.onPost, handlers.onComment].map((handler) => handler.mock.calls.length)).toEqual([0, 0, 0]);
  });

  it('when unsubscribed, then the request is aborted and later frames are ignored', async () => {
    // Arrange
    const answer = eventStreamAnswer();
    const { requests, handlers, unsubscribe } = subscribeWith(answer.response);
    await answer.frame(liveEventNames.snapshot, JSON.stringify(pageOf([])));
    await vi.waitFor(() => expect(handlers.onSnapshot).toHaveBeenCalled());

    // Act
    unsubscribe();
    await answer.frame(liveEventNames.post, JSON.stringify(aLivePost()));
    await answer.end();

    // Assert
    expect(requests[0]!.init.signal?.aborted).toBe(true);
    expect(handlers.onPost).not.toHaveBeenCalled();
    expect(handlers.onError).not.toHaveBeenCalled();
  });
});

describe('retryAfterMs', () => {
  it.each([
    ['seconds', '7', 7_000],
    ['an HTTP date', new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), 30_000],
    ['absurdly far away', '86400', 300_000],
    ['unreadable', 'soon', undefined],
    ['in the past', new Date(Date.UTC(2029, 11, 31)).toUTCString(), undefined],
  ])('when Retry-After is %s, then the wait is read from it', (_case, header, expected) => {
    // Act
    const ms = retryAfterMs(header, Date.UTC(2030, 0, 1));

    // Assert
    expect(ms).toBe(expected);
  });

  it('when there is no Retry-After, then no wait is asked for', () => {
    expect(retryAfterMs(null)).toBeUndefined();
  });
});
