/** Plain HTTP against a running process, for tests and the benchmark alike. */

export interface HttpAnswer<T = unknown> {
  status: number;
  /** Parsed when the answer says it is JSON, else the text as it came. */
  body: T;
  headers: Headers;
}

export interface HttpOptions {
  /** A hung process fails the call instead of the test's own timeout. */
  timeoutMs?: number;
}

/** One call with an optional JSON body. A connection error or timeout rejects (fetch's error, with its `cause`). */
export async function http<T = unknown>(method: 'GET' | 'POST', url: string, body?: unknown, { timeoutMs = 15_000 }: HttpOptions = {}): Promise<HttpAnswer<T>> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  const parsed: unknown = (response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
  return { status: response.status, body: parsed as T, headers: response.headers };
}

/** A GET that must answer 200; anything else throws with the status and the answer. */
export async function getJson<T>(url: string, options?: HttpOptions): Promise<T> {
  const { status, body } = await http<T>('GET', url, undefined, options);
  if (status !== 200) throw new Error(`GET ${url} answered ${status}: ${JSON.stringify(body)}`);
  return body;
}
