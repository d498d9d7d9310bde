import { describe, expect, it, vi } from 'vitest';
import { ApiRequestError, createHttpApi } from './api';

type FetchFunction = Parameters<typeof createHttpApi>[0] & {};

function answering(status: number, body: unknown, contentType = 'application/json'): FetchFunction {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return vi.fn<FetchFunction>(() => Promise.resolve(new Response(text, { status, headers: { 'content-type': contentType } })));
}

async function failureOf(promise: Promise<unknown>): Promise<ApiRequestError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof ApiRequestError)) throw new Error(`expected an ApiRequestError, got ${String(error)}`);
  return error;
}

describe('createHttpApi: createPost', () => {
  it('when the post is created, then it POSTs the title as JSON to a relative URL and resolves with the post', async () => {
    // Arrange
    const fetchFunction = answering(201, { id: 'p1', title: 'Hello' });
    const api = createHttpApi(fetchFunction);

    // Act
    const post = await api.createPost('Hello');

    // Assert
    expect(post).toEqual({ id: 'p1', title: 'Hello' });
    expect(fetchFunction).toHaveBeenCalledExactlyOnceWith(
      '/posts/create',
      expect.objectContaining({ method: 'POST', body: JSON.stringify({ title: 'Hello' }) }),
    );
  });

  it('when the title is invalid, then the error carries the message for the title field', async () => {
    // Arrange
    const api = createHttpApi(
      answering(400, {
        error: {
          code: 'invalid_request',
          message: 'title: title must not be empty',
          details: [{ path: 'title', message: 'title must not be empty' }],
        },
      }),
    );

    // Act
    const error = await failureOf(api.createPost(' '));

    // Assert
    expect(error).toMatchObject({ code: 'invalid_request', status: 400, fieldErrors: { title: 'title must not be empty' } });
  });

  it('when the gateway answers 502 with an HTML page, then the error says the blog is unavailable', async () => {
    // Arrange
    const api = createHttpApi(answering(502, '<html>Bad Gateway</html>', 'text/html'));

    // Act
    const error = await failureOf(api.createPost('Hello'));

    // Assert
    expect(error).toMatchObject({ code: 'http_error', status: 502, message: 'The blog is unavailable right now. Try again in a moment.' });
  });

  it('when the event bus is down, then the error explains it in words a reader can act on', async () => {
    // Arrange
    const api = createHttpApi(answering(503, { error: { code: 'event_bus_unavailable', message: 'The event bus is unreachable: ECONNREFUSED' } }));

    // Act
    const error = await failureOf(api.createPost('Hello'));

    // Assert
    expect(error).toMatchObject({ code: 'event_bus_unavailable', status: 503, message: "The blog can't save changes right now. Try again in a moment." });
  });

  it('when the network fails, then the error is a network error without a status', async () => {
    // Arrange
    const api = createHttpApi(() => Promise.reject(new TypeError('Failed to fetch')));

    // Act
    const error = await failureOf(api.createPost('Hello'));

    // Assert
    expect(error).toMatchObject({ code: 'network_error', status: undefined, message: "Couldn't reach the server. Check your connection and try again." });
  });

  it('when a success answer has the wrong shape, then it is an error rather than a broken post', async () => {
    // Arrange
    const api = createHttpApi(answering(201, { unexpected: true }));

    // Act
    const error = await failureOf(api.createPost('Hello'));

    // Assert
    expect(error).toMatchObject({ code: 'unexpected_response', status: 201 });
  });
});

describe('createHttpApi: createComment', () => {
  it('when the comment is created, then it resolves with the whole comment list', async () => {
    // Arrange
    const comments = [{ id: 'c1', content: 'Hi', status: 'pending' }];
    const fetchFunction = answering(201, comments);
    const api = createHttpApi(fetchFunction);

    // Act
    const result = await api.createComment('post/1', 'Hi');

    // Assert
    expect(result).toEqual(comments);
    expect(fetchFunction).toHaveBeenCalledExactlyOnceWith(
      '/posts/post%2F1/comments',
      expect.objectContaining({ method: 'POST', body: JSON.stringify({ content: 'Hi' }) }),
    );
  });

  it('when the post does not exist, then the error says so', async () => {
    // Arrange
    const api = createHttpApi(answering(404, { error: { code: 'post_not_found', message: 'There is no post with id p9' } }));

    // Act
    const error = await failureOf(api.createComment('p9', 'Hi'));

    // Assert
    expect(error).toMatchObject({ code: 'post_not_found', status: 404, message: 'This post no longer exists. Reload the page.' });
  });
});

describe('createHttpApi: getPostsPage', () => {
  it('when an older page is asked for, then it GETs /posts with its limit and cursor and resolves with the page', async () => {
    // Arrange
    const page = { posts: [{ id: 'p1', title: 'Hello', comments: [] }], nextCursor: '17' };
    const fetchFunction = answering(200, page);
    const api = createHttpApi(fetchFunction);

    // Act
    const result = await api.getPostsPage({ before: '42', limit: 20 });

    // Assert
    expect(result).toEqual(page);
    const [url, init] = vi.mocked(fetchFunction).mock.calls[0]!;
    const { pathname, searchParams } = new URL(url, 'http://blog.test');
    expect(pathname).toBe('/posts');
    expect(Object.fromEntries(searchParams)).toEqual({ limit: '20', before: '42' });
    expect(init).toMatchObject({ method: 'GET', cache: 'no-cache' });
  });

  it('when the answer is the classic map of every post rather than a page, then it is an error', async () => {
    // Arrange
    const api = createHttpApi(answering(200, { p1: { id: 'p1', title: 'Hello', comments: [] } }));

    // Act
    const error = await failureOf(api.getPostsPage({ before: '42', limit: 20 }));

    // Assert
    expect(error).toMatchObject({ code: 'unexpected_response', status: 200 });
  });

  it('when the gateway answers 502, then the error says the blog is unavailable', async () => {
    // Arrange
    const api = createHttpApi(answering(502, '<html>Bad Gateway</html>', 'text/html'));

    // Act
    const error = await failureOf(api.getPostsPage({ before: '42', limit: 20 }));

    // Assert
    expect(error).toMatchObject({ code: 'http_error', status: 502, message: 'The blog is unavailable right now. Try again in a moment.' });
  });
});
