import { limits, type EventServiceDeps, batchLimits } from '@blog/common';
import { createEventServiceDeps, makeTempDir, startAppUnderTest, type AppUnderTest, signedFetch } from '@blog/testing';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostsApp } from '../src/app.js';
import { postsProjection, type PostsState } from '../src/domain/posts.js';

describe('posts API', () => {
  let service: AppUnderTest<PostsState>;
  let deps: EventServiceDeps<PostsState>;
  let app: Express;

  beforeAll(async () => {
    service = await startAppUnderTest(postsProjection, createPostsApp);
    ({ deps, app } = service);
  });
  afterAll(() => service.close());

  const uniqueTitle = () => `post ${Math.random().toString(36).slice(2)}`;

  describe('POST /posts/create', () => {
    it('when the title is valid, then 201 {id, title}, the post is listed and PostCreated is in the log', async () => {
      const title = uniqueTitle();

      const response = await request(app).post('/posts/create').send({ title });

      expect(response.status).toBe(201);
      expect(response.body).toEqual({ id: expect.any(String), title });
      expect((await request(app).get('/posts')).body[response.body.id]).toEqual({ id: response.body.id, title });
      const log = (await (await signedFetch(`${service.bus.url}/events`)).json()) as Array<{ type: string; data: unknown }>;
      expect(log).toContainEqual(expect.objectContaining({ type: 'PostCreated', data: { id: response.body.id, title } }));
    });

    it('when the title has surrounding spaces, then they are trimmed', async () => {
      const response = await request(app).post('/posts/create').send({ title: '  spaced  ' });

      expect(response.status).toBe(201);
      expect(response.body.title).toBe('spaced');
    });

    it('when the request carries x-request-id, then the response echoes it', async () => {
      const response = await request(app).post('/posts/create').set('x-request-id', 'trace-123').send({ title: uniqueTitle() });

      expect(response.headers['x-request-id']).toBe('trace-123');
    });

    it.each([
      ['no body', undefined, 'invalid_request'],
      ['no title', {}, 'invalid_request'],
      ['an empty title', { title: '' }, 'invalid_request'],
      ['a blank title', { title: '   ' }, 'invalid_request'],
      ['a numeric title', { title: 42 }, 'invalid_request'],
      ['a null title', { title: null }, 'invalid_request'],
      ['an object title', { title: { $gt: '' } }, 'invalid_request'],
      ['a title over the limit', { title: 'x'.repeat(limits.titleMaxLength + 1) }, 'invalid_request'],
      ['an array body', ['title'], 'invalid_request'],
    ])('when the body has %s, then 400 and nothing is created', async (_case, body, code) => {
      const before = (await request(app).get('/posts')).body as object;

      const response = await request(app).post('/posts/create').send(body);

      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: { code, message: expect.any(String) } });
      expect((await request(app).get('/posts')).body).toEqual(before);
    });

    it('when the JSON is malformed, then 400 malformed_json', async () => {
      const response = await request(app).post('/posts/create').set('content-type', 'application/json').send('{"title": "x"');

      expect(response.status).toBe(400);
      expect(response.body).toEqual({ error: { code: 'malformed_json', message: expect.any(String) } });
    });

    it('when the body is not JSON, then 400 explaining the content type', async () => {
      const response = await request(app).post('/posts/create').set('content-type', 'text/plain').send('title=x');

      expect(response.status).toBe(400);
      expect(response.body.error.message).toMatch(/application\/json/);
    });

    it('when the body is over 100 kB, then 413', async () => {
      const response = await request(app).post('/posts/create').send({ title: 'x'.repeat(limits.bodyMaxBytes + 1) });

      expect(response.status).toBe(413);
      expect(response.body).toEqual({ error: { code: 'payload_too_large', message: expect.any(String) } });
    });
  });

  describe('when the event bus is down', () => {
    it('then creating a post fails fast with 503 JSON and nothing is stored', async () => {
      const deadBus = await makeTempDir();
      const offline = await createEventServiceDeps(postsProjection, { busUrl: 'http://127.0.0.1:9', dataDir: deadBus.path });
      const offlineApp = createPostsApp(offline);

      const response = await request(offlineApp).post('/posts/create').send({ title: uniqueTitle() });

      expect(response.status).toBe(503);
      expect(response.body).toEqual({ error: { code: 'event_bus_unavailable', message: expect.stringContaining('unreachable') } });
      expect((await request(offlineApp).get('/posts')).body).toEqual({});
      await offline.projection.close();
      await deadBus.remove();
    });
  });

  describe('POST /events', () => {
    it('when a PostCreated delivery arrives twice, then the post is listed once and the second is a duplicate', async () => {
      const stored = await deps.bus.publish({ type: 'PostCreated', data: { id: 'delivered-post', title: 'delivered' } });

      const first = await request(app).post('/events').send(stored);
      const second = await request(app).post('/events').send(stored);

      expect(first.body).toEqual({ status: 'applied', lastSeq: stored.seq, maxBatch: batchLimits.maxEvents });
      expect(second.body).toEqual({ status: 'duplicate', lastSeq: stored.seq, maxBatch: batchLimits.maxEvents });
      const posts = (await request(app).get('/posts')).body as Record<string, unknown>;
      expect(Object.values(posts).filter((post) => (post as { id: string }).id === 'delivered-post')).toHaveLength(1);
    });

    it('when a delivery is not an envelope, then 400', async () => {
      const response = await request(app).post('/events').send({ type: 'PostCreated', data: { id: 'x', title: 'no seq' } });

      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('invalid_request');
    });
  });

  it('when restarted on the same data, then the posts are still there without asking the bus', async () => {
    const created = (await request(app).post('/posts/create').send({ title: uniqueTitle() })).body as { id: string };
    await deps.projection.close();

    service.deps = deps = await createEventServiceDeps(postsProjection, { busUrl: 'http://127.0.0.1:9', dataDir: service.dataDir });
    app = createPostsApp(deps);

    expect((await request(app).get('/posts')).body[created.id]).toEqual(created);
  });
});
