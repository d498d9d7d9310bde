import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { startAppUnderTest, type AppUnderTest } from '@blog/testing';
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

  it('when the page size is not a number from 1 to 100, then 400 before any stream starts', async () => {
    const response = await request(service.app).get('/posts/stream?limit=0');

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
  });

  it('when the service starts stopping, then open streams end so shutdown is not held up', async () => {
    const response = await fetch(`${url}/posts/stream`);
    const next = eventReader(response.body!);
    await next();

    service.deps.lifecycle.markStopping();

    await expect(next()).rejects.toThrow('stream ended');
  });
});
