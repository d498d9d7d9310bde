import type { CommentView, Post, PostsPage } from '@blog/common/contract';
import { isApiError, isCommentViews, isPost, isPostsPage } from './view-guards';

/** Which page of posts to read: the `limit` posts just older than the cursor `before`. */
export interface PageQuery {
  before: string;
  limit: number;
}

/** What the page needs from the server besides the live stream; tests pass an in-memory object with the same shape. */
export interface BlogApi {
  createPost(title: string): Promise<Post>;
  /** Resolves with the post's whole comment list, the new comment included (still `pending`). */
  createComment(postId: string, content: string): Promise<CommentView[]>;
  /** An older page (the newest one comes with the stream's snapshot). */
  getPostsPage(query: PageQuery): Promise<PostsPage>;
}

/** Messages for one input, keyed by the API's field name (`title`, `content`). */
export type FieldErrors = Partial<Record<string, string>>;

/** Every way a request can fail, with a message written for the person at the keyboard. */
export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  readonly code: string;
  /** Undefined when no answer came back at all (offline, timed out). */
  readonly status: number | undefined;
  readonly fieldErrors: FieldErrors;

  constructor(init: { code: string; message: string; status?: number; fieldErrors?: FieldErrors; cause?: unknown }) {
    super(init.message, { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.fieldErrors = init.fieldErrors ?? {};
  }
}

// A request that hangs would leave the form's button disabled forever.
const REQUEST_TIMEOUT_MS = 15_000;

type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

// Wrapped rather than passed as `fetch` itself: called as a method of another object, the
// browser's fetch throws "Illegal invocation".
const browserFetch: FetchFunction = (input, init) => fetch(input, init);

/** The API over same-origin relative URLs: the gateway in front of the page routes them. */
export function createHttpApi(fetchFunction: FetchFunction = browserFetch): BlogApi {
  async function requestJson<T>(path: string, init: RequestInit, isExpected: (value: unknown) => value is T): Promise<T> {
    let response: Response;
    try {
      response = await fetchFunction(path, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (cause) {
      throw new ApiRequestError({
        code: 'network_error',
        message: "Couldn't reach the server. Check your connection and try again.",
        cause,
      });
    }
    const payload = await readJson(response);
    if (!response.ok) throw describeErrorAnswer(response.status, payload);
    if (!isExpected(payload)) {
      throw new ApiRequestError({
        code: 'unexpected_response',
        status: response.status,
        message: 'The server sent an answer this page does not understand. Reload the page and try again.',
      });
    }
    return payload;
  }

  function postJson<T>(path: string, body: unknown, isExpected: (value: unknown) => value is T): Promise<T> {
    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    return requestJson(path, { method: 'POST', headers, body: JSON.stringify(body) }, isExpected);
  }

  return {
    createPost: (title) => postJson('/posts/create', { title }, isPost),
    createComment: (postId, content) =>
      postJson(`/posts/${encodeURIComponent(postId)}/comments`, { content }, isCommentViews),
    // Always with `limit`: without it, `GET /posts` is the classic answer with every post ever written.
    getPostsPage: ({ before, limit }) =>
      requestJson(
        `/posts?${new URLSearchParams({ limit: String(limit), before }).toString()}`,
        // A page read again after a reconnect must not come from the HTTP cache; revalidating is cheap.
        { method: 'GET', headers: { accept: 'application/json' }, cache: 'no-cache' },
        isPostsPage,
      ),
  };
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    // Gateways answer 502/504 with HTML or nothing: the status alone has to explain it.
    return undefined;
  }
}

function describeErrorAnswer(status: number, payload: unknown): ApiRequestError {
  if (!isApiError(payload)) {
    const message =
      status === 502 || status === 503 || status === 504
        ? 'The blog is unavailable right now. Try again in a moment.'
        : `The server answered with an error (${status}). Try again.`;
    return new ApiRequestError({ code: 'http_error', status, message });
  }

  const { code, message, details = [] } = payload.error;
  const fieldErrors: FieldErrors = {};
  for (const detail of details) fieldErrors[detail.path] ??= detail.message;

  // The API's own messages are written for developers; these are the ones a reader can act on.
  const readerMessages: Partial<Record<string, string>> = {
    event_bus_unavailable: "The blog can't save changes right now. Try again in a moment.",
    post_not_found: 'This post no longer exists. Reload the page.',
  };
  return new ApiRequestError({
    code,
    status,
    message: readerMessages[code] ?? (status >= 500 ? 'Something went wrong on the server. Try again.' : message),
    fieldErrors,
  });
}
