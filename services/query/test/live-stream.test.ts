import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { PublishRequest } from '@blog/common';
import { startAppUnderTest, type AppUnderTest } from '@blog/testing';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueryApp } from '../src/app.js';
import { queryProjection, type QueryView } from '../src/domain/query-view.js';

/** Reads server-sent events off a real HTTP response, one at a time. */
function eventReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return async function next(): Promise<{ event: string; id: string; data: unknown }> {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (frame.startsWith(':')) continue;
        const field = (name: string) => frame.split('\n').find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2) ?? '';
        return { event: field('event'), id: field('id'), data: JSON.parse(field('data')) as unknown };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

/** The query app in process on a real port, next to a real bus; the test publishes and delivers itself. */
async function startQuery(createApp: (deps: AppUnderTest<QueryView>['deps']) => Express = createQueryApp) {
  const service = await startAppUnderTest(queryProjection, createApp);
  const server = service.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    service,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Publishes `events` to the bus in one batch and delivers what it stored, as the bus would push it. */
    async publishAndDeliver(events: PublishRequest[]) {
      const stored = await service.deps.bus.publishAll(events);
      await service.deps.projection.deliver(stored);
      return stored;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await service.close();
    },
  };
}

describe('GET /posts/stream', () => {
  let service: AppUnderTest<QueryView>;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    service = await startAppUnderTest(queryProjection, createQueryApp);
    server = service.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await service.close();
  });

  it('when a client connects, then it gets the newest page, then each changed post as it changes, with its cursor', async () => {
    const { deps } = service;
    const before = await deps.bus.publish({ type: 'PostCreated', data: { id: 'live-1', title: 'Before connecting' } });
    await request(service.app).post('/events').send(before);
    const controller = new AbortController();
    const response = await fetch(`${url}/posts/stream`, { signal: controller.signal });
    const next = eventReader(response.body!);

    const snapshot = await next();
    const comment = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'live-c1', postId: 'live-1', content: 'hi', status: 'pending' } });
    await request(service.app).post('/events').send(comment);
    const update = await next();
    controller.abort();

    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(snapshot).toEqual({ event: 'snapshot', id: String(before.seq), data: { posts: [{ id: 'live-1', title: 'Before connecting', comments: [] }], nextCursor: null } });
    expect(update).toEqual({
      event: 'post',
      id: String(comment.seq),
      data: { id: 'live-1', title: 'Before connecting', comments: [{ id: 'live-c1', content: 'hi', status: 'pending' }], cursor: String(before.seq) },
    });
  });

  it('when a client asks for a page size, then the snapshot is that many newest posts with the cursor of the rest', async () => {
    const { deps } = service;
    for (const id of ['live-2', 'live-3', 'live-4']) await request(service.app).post('/events').send(await deps.bus.publish({ type: 'PostCreated', data: { id, title: id } }));
    const controller = new AbortController();
    const response = await fetch(`${url}/posts/stream?limit=2`, { signal: controller.signal });

    const snapshot = (await eventReader(response.body!)()) as { data: { posts: Array<{ id: string }>; nextCursor: string } };
    controller.abort();

    expect(snapshot.data.posts.map((post) => post.id)).toEqual(['live-4', 'live-3']);
    const rest = await request(service.app).get(`/posts?limit=100&before=${snapshot.data.nextCursor}`);
    expect(rest.body.posts.map((post: { id: string }) => post.id)).toEqual(['live-2', 'live-1']);
  });

  it.each(['limit=0', 'frames=diff'])('when the query is not valid (%s), then 400 before any stream starts', async (query) => {
    const response = await request(service.app).get(`/posts/stream?${query}`);

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
  });

  it('when a client asks for change frames, then a comment change sends only that comment, and a new post the whole post', async () => {
    const { deps } = service;
    const post = await deps.bus.publish({ type: 'PostCreated', data: { id: 'changes-1', title: 'Changes only' } });
    await deps.projection.deliver(post);
    const first = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'changes-c1', postId: 'changes-1', content: 'first', status: 'pending' } });
    await deps.projection.deliver(first);
    const controller = new AbortController();
    const response = await fetch(`${url}/posts/stream?frames=changes`, { signal: controller.signal });
    const next = eventReader(response.body!);
    await next();

    const second = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'changes-c2', postId: 'changes-1', content: 'second', status: 'pending' } });
    await deps.projection.deliver(second);
    const verdict = await deps.bus.publish({ type: 'CommentModerated', data: { id: 'changes-c1', postId: 'changes-1', content: 'first', status: 'approved' } });
    await deps.projection.deliver(verdict);
    const newPost = await deps.bus.publish({ type: 'PostCreated', data: { id: 'changes-2', title: 'Another' } });
    await deps.projection.deliver(newPost);
    const frames = [await next(), await next(), await next()];
    controller.abort();

    const cursor = String(post.seq);
    expect(frames).toEqual([
      { event: 'comment', id: String(second.seq), data: { postId: 'changes-1', cursor, comment: { id: 'changes-c2', content: 'second', status: 'pending' } } },
      { event: 'comment', id: String(verdict.seq), data: { postId: 'changes-1', cursor, comment: { id: 'changes-c1', content: 'first', status: 'approved' } } },
      { event: 'post', id: String(newPost.seq), data: { id: 'changes-2', title: 'Another', comments: [], cursor: String(newPost.seq) } },
    ]);
  });

  it('when the service starts stopping, then open streams end so shutdown is not held up', async () => {
    const response = await fetch(`${url}/posts/stream`);
    const next = eventReader(response.body!);
    await next();

    service.deps.lifecycle.markStopping();

    await expect(next()).rejects.toThrow('stream ended');
  });
});

describe('GET /posts/stream: limits', () => {
  it('when a reader on a slow link gets a snapshot far larger than the backlog limit and changes follow while it is still being sent, then it gets the snapshot whole and then the change', async () => {
    // Arrange: a newest page of about 12 MB, far more than the kernel holds for a reader that does
    // not read (about 4 MB on loopback here: tcp_wmem's maximum), so most of it waits in the process.
    const query = await startQuery();
    try {
      const comments = 6_000;
      await query.publishAndDeliver([{ type: 'PostCreated', data: { id: 'big', title: 'A long thread' } }]);
      for (let from = 0; from < comments; from += 1_000) {
        await query.publishAndDeliver(
          Array.from({ length: 1_000 }, (_, at): PublishRequest => ({
            type: 'CommentCreated',
            data: { id: `big-c${from + at}`, postId: 'big', content: `${from + at} ${'x'.repeat(1_990)}`, status: 'pending' },
          })),
        );
      }
      const controller = new AbortController();
      // Headers and the snapshot are written together: once the answer has started, the snapshot is queued.
      const response = await fetch(`${query.url}/posts/stream?limit=1&frames=changes`, { signal: controller.signal });

      // Act: a change while this reader has read nothing yet.
      const [verdict] = await query.publishAndDeliver([{ type: 'CommentModerated', data: { id: 'big-c0', postId: 'big', content: `0 ${'x'.repeat(1_990)}`, status: 'approved' } }]);
      const next = eventReader(response.body!);
      const snapshot = (await next()) as { event: string; data: { posts: Array<{ id: string; comments: unknown[] }> } };
      const change = await next();
      controller.abort();

      // Assert
      expect(snapshot.event).toBe('snapshot');
      expect(snapshot.data.posts.map((post) => [post.id, post.comments.length])).toEqual([['big', comments]]);
      expect(change).toEqual({ event: 'comment', id: String(verdict!.seq), data: { postId: 'big', cursor: '1', comment: { id: 'big-c0', content: `0 ${'x'.repeat(1_990)}`, status: 'approved' } } });
    } finally {
      await query.close();
    }
  });

  it('when MAX_LIVE_STREAMS streams are open, then one more is refused with 503, Retry-After and a JSON error, and served once one closes', async () => {
    const query = await startQuery((deps) => createQueryApp(deps, { MAX_LIVE_STREAMS: 2 }));
    try {
      const streams = [new AbortController(), new AbortController()];
      const open = await Promise.all(streams.map((controller) => fetch(`${query.url}/posts/stream`, { signal: controller.signal })));
      await Promise.all(open.map((response) => eventReader(response.body!)()));

      const refused = await fetch(`${query.url}/posts/stream`);
      const refusedBody: unknown = await refused.json();
      streams[0]!.abort();
      const metrics = await (await fetch(`${query.url}/metrics`)).text();
      const servedAgain = await waitForStatus(`${query.url}/posts/stream`, 200);
      streams[1]!.abort();

      expect(open.map((response) => response.status)).toEqual([200, 200]);
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(5);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(15);
      expect(refusedBody).toEqual({ error: { code: 'too_many_streams', message: expect.stringContaining('2 live streams') as string } });
      expect(metrics).toMatch(/^live_stream_refused_total\{[^}]*\} 1$/m);
      expect(servedAgain).toBe(200);
    } finally {
      await query.close();
    }
  });
});

/** Connects until the stream answers `status` (a closed stream is forgotten once its close is seen); bounded. */
async function waitForStatus(url: string, status: number): Promise<number> {
  let last = 0;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const controller = new AbortController();
    const response = await fetch(url, { signal: controller.signal });
    last = response.status;
    controller.abort();
    if (last === status) return last;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return last;
}
