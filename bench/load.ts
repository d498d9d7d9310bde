/**
 * Load generators and the live-stream watcher: closed loop (autocannon, a fixed number of
 * connections each waiting for its answer), open loop (requests sent on a schedule, whatever the
 * answers do), and one SSE connection to query's /posts/stream that notes when things appear.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { LivePost, PostsPage } from '@blog/common';
import autocannon from 'autocannon';
import { summarize, type Summary } from './figures.ts';

export interface ClosedLoopResult {
  ok: number;
  failed: number;
  seconds: number;
  /** 2xx answers per second of wall time. */
  throughput: number;
  /** Latency of the 2xx answers, in ms (sub-millisecond resolution, unlike autocannon's histogram). */
  latency: Summary;
}

export interface ClosedLoopOptions {
  url: string;
  method: 'GET' | 'POST';
  connections: number;
  /** Stop after this many requests... */
  amount?: number;
  /** ...or after this many seconds. */
  durationSeconds?: number;
  /** A JSON body per request (POST). */
  body?: (index: number) => unknown;
}

export async function closedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  let index = 0;
  const body = options.body;
  const started = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationSeconds ?? 5 }),
        timeout: 10,
        requests: [
          {
            method: options.method,
            headers: body ? { 'content-type': 'application/json' } : {},
            ...(body ? { setupRequest: (request: autocannon.Request) => ({ ...request, body: JSON.stringify(body(index++)) }) } : {}),
          },
        ],
      },
      (error: unknown, finished: autocannon.Result) => (error ? reject(error instanceof Error ? error : new Error('autocannon failed', { cause: error })) : resolve(finished)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  const seconds = (performance.now() - started) / 1000;
  return {
    ok: result['2xx'],
    failed: result.non2xx + result.errors,
    seconds,
    throughput: result['2xx'] / seconds,
    latency: summarize(latencies),
  };
}

export interface OpenLoopResult {
  sent: number;
  /** The rate actually achieved by the scheduler. */
  sendRate: number;
  /** How far behind its schedule the generator fell at worst (ms): large values mean it was not open loop. */
  maxLagMs: number;
}

/**
 * Calls `send(i)` for i = 0..rate*seconds-1, request i at start + i/rate, without waiting for
 * earlier ones to answer; resolves when every `send` has settled.
 */
export async function openLoop(rate: number, seconds: number, send: (index: number) => Promise<void>): Promise<OpenLoopResult> {
  const total = Math.round(rate * seconds);
  const pending: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  let maxLagMs = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - started) * rate) / 1000) + 1);
      if (due > sent) maxLagMs = Math.max(maxLagMs, now - (started + (sent * 1000) / rate));
      while (sent < due) pending.push(send(sent++).catch(() => undefined));
      if (sent >= total) return resolve();
      setTimeout(tick, Math.max(0, started + (sent * 1000) / rate - performance.now()));
    };
    tick();
  });
  const sendSeconds = (performance.now() - started) / 1000;
  await Promise.all(pending);
  return { sent, sendRate: total / Math.max(sendSeconds, 1 / rate), maxLagMs };
}

export interface JsonResponse {
  status: number;
  body: unknown;
  /** performance.now() when the status line and headers arrived. */
  respondedAt: number;
  /** Time from sending to the headers, ms. */
  latencyMs: number;
}

/** A keep-alive agent that never makes requests queue (open loop: the schedule decides, not the pool). */
export const createAgent = (): http.Agent => new http.Agent({ keepAlive: true, maxSockets: 512 });

export function postJson(agent: http.Agent, url: string, payload: unknown, timeoutMs = 10_000): Promise<JsonResponse> {
  const data = JSON.stringify(payload);
  const sentAt = performance.now();
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, timeout: timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (response) => {
      const respondedAt = performance.now();
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('error', reject);
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as unknown, respondedAt, latencyMs: respondedAt - sentAt });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    request.on('timeout', () => request.destroy(new Error(`POST ${url} timed out after ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(data);
  });
}

/** The first page of a connection's `snapshot`, as far as the watcher checks it. */
const isPostsPage = (value: unknown): value is PostsPage => {
  const page = value as Partial<PostsPage> | null;
  return typeof page === 'object' && page !== null && Array.isArray(page.posts) && (page.nextCursor === null || typeof page.nextCursor === 'string');
};

/**
 * One connection to query's `GET /posts/stream`. Notes the first time each post id appears (in the
 * snapshot page or a `post` frame), and the first time each comment shows a final status (approved
 * or rejected). A snapshot that is not a page fails `ready`: a stream the bench cannot read must not
 * pass for one on which nothing showed up.
 */
export class LiveStreamWatcher {
  readonly postSeenAt = new Map<string, number>();
  readonly commentSettledAt = new Map<string, { at: number; status: string }>();
  readonly ready: Promise<void>;
  frames = 0;
  /** Posts in the snapshot page the connection started with. */
  snapshotPosts = 0;
  /** Why reading stopped, if a frame could not be read (everything after it then shows up as missing). */
  failure: string | undefined;
  private request: http.ClientRequest | undefined;

  constructor(url: string) {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.ready = promise;
    const timer = setTimeout(() => reject(new Error(`no snapshot from ${url} within 10 s`)), 10_000);
    this.request = http.get(url, { agent: false, headers: { accept: 'text/event-stream' } }, (response) => {
      if (response.statusCode !== 200) reject(new Error(`${url} answered ${response.statusCode}`));
      response.setEncoding('utf8');
      let buffer = '';
      response.on('data', (chunk: string) => {
        const at = performance.now();
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event: string | undefined;
          try {
            event = this.onFrame(frame, at);
          } catch (error) {
            this.failure = error instanceof Error ? error.message : String(error);
            clearTimeout(timer);
            reject(new Error(this.failure));
            this.close();
            return;
          }
          if (event === 'snapshot') {
            clearTimeout(timer);
            resolve();
          }
        }
      });
    });
    this.request.on('error', reject);
    // A failure before the snapshot is reported through `ready`; later ones show up as missing posts.
    promise.catch(() => undefined);
  }

  close(): void {
    this.request?.destroy();
    this.request = undefined;
  }

  private onFrame(frame: string, at: number): string | undefined {
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    this.frames += 1;
    if (event === 'snapshot') {
      const page: unknown = JSON.parse(data.join('\n'));
      if (!isPostsPage(page)) throw new Error(`the stream's snapshot is not a page ({posts, nextCursor}): ${data.join('\n').slice(0, 200)}`);
      this.snapshotPosts = page.posts.length;
      for (const post of page.posts) this.see(post, at);
    } else if (event === 'post') {
      this.see(JSON.parse(data.join('\n')) as LivePost, at);
    }
    return event;
  }

  private see(post: Pick<LivePost, 'id' | 'comments'>, at: number): void {
    if (!this.postSeenAt.has(post.id)) this.postSeenAt.set(post.id, at);
    for (const comment of post.comments) {
      if (comment.status !== 'pending' && !this.commentSettledAt.has(comment.id)) this.commentSettledAt.set(comment.id, { at, status: comment.status });
    }
  }
}
