import { randomUUID } from 'node:crypto';
import { getJson, http, signedFetch, startStack, waitFor, type ServiceProcess, type Stack, type StackTopology } from '@blog/testing';
import { afterAll, beforeAll, beforeEach, onTestFailed } from 'vitest';

/** Black-box helpers: plain HTTP against the real processes of a `startStack()` stack. */

import type { CommentStatus, CommentView, PostView } from '@blog/common';

export type { CommentStatus, CommentView, PostView };

export interface StoredEvent {
  id: string;
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

/** Convergence waits: bounded, generous enough for a loaded CI machine. */
export const CONVERGE_MS = 30_000;

/** A short random suffix so that every test creates data no other test (or run) has. */
export const unique = (label: string): string => `${label} ${randomUUID().slice(0, 8)}`;

export const createPost = (stack: Stack, title: string) => http<{ id: string; title: string }>('POST', `${stack.posts.url}/posts/create`, { title });

export const createComment = (stack: Stack, postId: string, content: string) =>
  http<CommentView[]>('POST', `${stack.comments.url}/posts/${encodeURIComponent(postId)}/comments`, { content });

export const postsOfPostsService = (stack: Stack) => getJson<Record<string, { id: string; title: string }>>(`${stack.posts.url}/posts`);
export const queryView = (stack: Stack) => getJson<Record<string, PostView>>(`${stack.query.url}/posts`);
export const commentsOfPost = (stack: Stack, postId: string) => getJson<CommentView[]>(`${stack.comments.url}/posts/${encodeURIComponent(postId)}/comments`);

/** The whole bus log, read page by page through `GET /events?after=N&limit=M`. */
export async function readAllEvents(bus: ServiceProcess, pageSize = 100): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for (let page = 0; page < 10_000; page += 1) {
    const response = await signedFetch(`${bus.url}/events?after=${events.length}&limit=${pageSize}`);
    if (response.status !== 200) throw new Error(`GET /events answered ${response.status}: ${await response.text()}`);
    const batch = (await response.json()) as StoredEvent[];
    if (batch.length === 0) return events;
    if (batch.length > pageSize) throw new Error(`asked for ${pageSize} events, got ${batch.length}`);
    // Paging by `after=events.length` is only right if the numbering has no gaps: checked by the caller.
    events.push(...batch);
  }
  throw new Error('the event log did not end after 10,000 pages');
}

/** The status moderation must give this content (the default blocked word is "orange", any case). */
export const expectedVerdict = (content: string): CommentStatus => (/orange/i.test(content) ? 'rejected' : 'approved');

/** Sorted copy, so that lists built by concurrent requests compare independent of arrival order. */
export const byId = <T extends { id: string }>(items: readonly T[]): T[] => [...items].sort((a, b) => a.id.localeCompare(b.id));

/** Ids that occur more than once. */
export function duplicates(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of ids) (seen.has(id) ? twice : seen).add(id);
  return [...twice];
}

/**
 * Waits until the stack has settled: query and posts know the same posts, query has every comment the
 * bus's log has, none of them pending, and comments' own view of every commented post agrees with
 * query's. The comments come from the log, not from query: a post whose comments query has not seen
 * yet looks uncommented there, and would pass for settled. Returns query's view.
 */
export async function waitUntilSettled(stack: Stack, what = 'the stack to settle'): Promise<Record<string, PostView>> {
  return waitFor(
    async () => {
      const [posts, view, events] = await Promise.all([postsOfPostsService(stack), queryView(stack), readAllEvents(stack.bus, 1000)]);
      const postIds = Object.keys(posts).sort();
      if (JSON.stringify(postIds) !== JSON.stringify(Object.keys(view).sort())) return undefined;
      const logged = Map.groupBy(
        events.filter((e) => e.type === 'CommentCreated'),
        (e) => String(e.data.postId),
      );
      for (const [postId, created] of logged) {
        const inQuery = view[postId]?.comments ?? [];
        if (inQuery.length !== new Set(created.map((e) => e.data.id)).size) return undefined;
        if (inQuery.some((comment) => comment.status === 'pending')) return undefined;
      }
      const commented = [...logged.keys()];
      const ownViews = await Promise.all(commented.map((postId) => commentsOfPost(stack, postId)));
      const agree = commented.every((postId, i) => JSON.stringify(byId(view[postId]!.comments)) === JSON.stringify(byId(ownViews[i]!)));
      return agree ? view : undefined;
    },
    { timeoutMs: CONVERGE_MS, intervalMs: 100, what },
  );
}

/**
 * Reads until `done` holds (bounded by CONVERGE_MS) and returns the last value read either way, so
 * that the test's own assertions on it fail with a readable diff instead of a bare timeout.
 */
export async function pollUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  let last: T | undefined;
  let seen = false;
  try {
    return await waitFor(
      async () => {
        last = await read();
        seen = true;
        return done(last) ? last : undefined;
      },
      { timeoutMs: CONVERGE_MS, intervalMs: 50, what },
    );
  } catch (error) {
    if (!seen) throw error;
    console.warn(`${(error as Error).message}; asserting on the last value read`);
    return last as T;
  }
}

/**
 * One stack for the whole file: started before the first test, destroyed after the last, and every
 * process's output printed when a test fails. Returns the stack's getter.
 */
export function useStack({ topology, onFailure }: { topology?: StackTopology; onFailure?: () => void } = {}): () => Stack {
  let stack: Stack | undefined;
  beforeAll(async () => {
    stack = await startStack({}, topology);
  }, 90_000);
  afterAll(() => stack?.destroy(), 60_000);
  beforeEach(() => {
    onTestFailed(() => {
      onFailure?.();
      for (const service of stack?.all ?? []) console.error(`----- ${service.name} :${service.port} (${service.running ? 'running' : 'not running'}) output:\n${service.output()}`);
    });
  });
  return () => {
    if (!stack) throw new Error('the stack is not started (useStack must be called at the top of the file)');
    return stack;
  };
}
