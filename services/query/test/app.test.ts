import { batchLimits } from '@blog/common';
import type { EventServiceDeps } from '@blog/common';
import { startAppUnderTest, type AppUnderTest } from '@blog/testing';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueryApp } from '../src/app.js';
import { queryProjection, type QueryView } from '../src/domain/query-view.js';

describe('query API', () => {
  let service: AppUnderTest<QueryView>;
  let deps: EventServiceDeps<QueryView>;
  let app: Express;

  beforeAll(async () => {
    service = await startAppUnderTest(queryProjection, createQueryApp);
    ({ deps, app } = service);
  });
  afterAll(() => service.close());

  it('when events are delivered, then GET /posts shows posts with their comments in the classic shape', async () => {
    const post = await deps.bus.publish({ type: 'PostCreated', data: { id: 'q-p1', title: 'Query me' } });
    const comment = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'q-c1', postId: 'q-p1', content: 'hi', status: 'pending' } });
    const update = await deps.bus.publish({ type: 'CommentUpdated', data: { id: 'q-c1', postId: 'q-p1', content: 'hi', status: 'approved' } });

    for (const event of [post, comment, update]) expect((await request(app).post('/events').send(event)).status).toBe(200);

    const response = await request(app).get('/posts');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/application\/json/);
    expect(response.body).toEqual({ 'q-p1': { id: 'q-p1', title: 'Query me', comments: [{ id: 'q-c1', content: 'hi', status: 'approved' }] } });
  });

  it('when GET /posts is asked again with its ETag, then 304 until the view changes, then 200 with the new view', async () => {
    const first = await request(app).get('/posts');
    expect(first.headers.etag).toMatch(/^"\d+-[0-9a-f]+"$/);

    const unchanged = await request(app).get('/posts').set('if-none-match', first.headers.etag!);
    expect(unchanged.status).toBe(304);

    const post = await deps.bus.publish({ type: 'PostCreated', data: { id: 'q-etag', title: 'Changes the view' } });
    expect((await request(app).post('/events').send(post)).status).toBe(200);
    const changed = await request(app).get('/posts').set('if-none-match', first.headers.etag!);
    expect(changed.status).toBe(200);
    expect(changed.headers.etag).not.toBe(first.headers.etag);
    expect(changed.body['q-etag']).toEqual({ id: 'q-etag', title: 'Changes the view', comments: [] });
  });

  describe('GET /posts?limit=N&before=CURSOR', () => {
    const deliverPosts = async (ids: string[]) => {
      const stored = await deps.bus.publishAll(ids.map((id) => ({ type: 'PostCreated' as const, data: { id, title: `title ${id}` } })));
      expect((await request(app).post('/events').send(stored)).status).toBe(200);
    };

    it('when pages are followed by their cursors, then every post comes once, newest first, in the classic item shape', async () => {
      const ids = Array.from({ length: 7 }, (_, at) => `pg-${at}`);
      await deliverPosts(ids);
      const comment = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'pg-c', postId: 'pg-3', content: 'on page two', status: 'pending' } });
      await request(app).post('/events').send(comment);

      const seen: Array<{ id: string; title: string; comments: unknown[] }> = [];
      let cursor: string | null = null;
      do {
        const response = await request(app).get(`/posts?limit=3${cursor ? `&before=${cursor}` : ''}`);
        expect(response.status).toBe(200);
        expect(response.body.posts.length).toBeLessThanOrEqual(3);
        seen.push(...response.body.posts);
        cursor = response.body.nextCursor;
      } while (cursor !== null);

      const classic = (await request(app).get('/posts')).body as Record<string, unknown>;
      expect(seen.map((post) => post.id)).toEqual(Object.keys(classic).reverse());
      expect(seen.find((post) => post.id === 'pg-3')).toEqual({ id: 'pg-3', title: 'title pg-3', comments: [{ id: 'pg-c', content: 'on page two', status: 'pending' }] });
      for (const post of seen) expect(post).toEqual(classic[post.id]);
    });

    it('when only a limit is given, then it is the newest posts', async () => {
      await deliverPosts(['pg-newest']);

      const response = await request(app).get('/posts?limit=1');

      expect(response.body).toEqual({ posts: [{ id: 'pg-newest', title: 'title pg-newest', comments: [] }], nextCursor: expect.stringMatching(/^\d+$/) });
    });

    it('when the newest page is asked again with its ETag, then 304 until the view changes, then 200 with the new post first', async () => {
      await deliverPosts(['pg-etag-1']);
      const first = await request(app).get('/posts?limit=2');
      expect(first.status).toBe(200);
      const again = await request(app).get('/posts?limit=2');
      expect(again.body).toEqual(first.body);

      const unchanged = await request(app).get('/posts?limit=2').set('if-none-match', first.headers.etag!);
      expect(unchanged.status).toBe(304);
      const otherLimit = await request(app).get('/posts?limit=1').set('if-none-match', first.headers.etag!);
      expect(otherLimit.status).toBe(200);

      await deliverPosts(['pg-etag-2']);
      const changed = await request(app).get('/posts?limit=2').set('if-none-match', first.headers.etag!);
      expect(changed.status).toBe(200);
      expect(changed.body.posts.map((post: { id: string }) => post.id)).toEqual(['pg-etag-2', 'pg-etag-1']);
    });

    it.each([
      ['limit=0'],
      ['limit=101'],
      ['limit=abc'],
      ['limit=2.5'],
      ['limit=5&before=abc'],
      ['limit=5&before=-3'],
      ['limit=5&before=0'],
      ['before=1e9'],
      ['limit=5&before=99999999999999999999'],
      ['limit=5&limit=6'],
    ])('when the query is %s, then 400 invalid_request', async (query) => {
      const response = await request(app).get(`/posts?${query}`);

      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: { code: 'invalid_request', message: expect.any(String) } });
    });
  });

  it('when there are more posts than one page of the database, then the classic map is streamed whole, in the order they were created', async () => {
    const before = Object.keys((await request(app).get('/posts')).body as object);
    const ids = Array.from({ length: 1_234 }, (_, at) => `many-${at}`);
    for (let from = 0; from < ids.length; from += batchLimits.maxEvents) {
      const stored = await deps.bus.publishAll(ids.slice(from, from + batchLimits.maxEvents).map((id) => ({ type: 'PostCreated' as const, data: { id, title: id } })));
      await request(app).post('/events').send(stored);
    }

    const response = await request(app).get('/posts');

    expect(Object.keys(response.body as object)).toEqual([...before, ...ids]);
    expect(response.body['many-1000']).toEqual({ id: 'many-1000', title: 'many-1000', comments: [] });
  });

  it('when a delivery skips ahead, then the missing events are pulled from the bus first', async () => {
    await deps.bus.publish({ type: 'PostCreated', data: { id: 'q-gap', title: 'Missed' } });
    const later = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'q-gap-c', postId: 'q-gap', content: 'after the gap', status: 'pending' } });

    const response = await request(app).post('/events').send(later);

    expect(response.body).toEqual({ status: 'applied', lastSeq: later.seq, maxBatch: batchLimits.maxEvents });
    expect((await request(app).get('/posts')).body['q-gap']).toEqual({ id: 'q-gap', title: 'Missed', comments: [{ id: 'q-gap-c', content: 'after the gap', status: 'pending' }] });
  });

  it('when a delivery claims a sequence the bus does not have, then 503 and nothing changes', async () => {
    const before = (await request(app).get('/posts')).body as object;

    const response = await request(app).post('/events').send({ id: 'forged', seq: 1_000_000, type: 'PostCreated', data: { id: 'forged', title: 'nope' } });

    expect(response.status).toBe(503);
    expect(response.body.error.code).toBe('events_missing');
    expect((await request(app).get('/posts')).body).toEqual(before);
  });

  it.each([
    ['a body without seq', { type: 'PostCreated', data: { id: 'x', title: 'x' } }],
    ['a negative seq', { id: 'e', seq: -1, type: 'PostCreated', data: { id: 'x', title: 'x' } }],
    ['a non-string type', { id: 'e', seq: 1, type: 5, data: {} }],
  ])('when the delivery has %s, then 400', async (_case, body) => {
    const response = await request(app).post('/events').send(body);

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
  });

  it('when a known event type carries invalid data, then 400 invalid_event and it is not applied', async () => {
    const next = deps.projection.lastSeq + 1;

    const response = await request(app).post('/events').send({ id: 'bad', seq: next, type: 'PostCreated', data: { id: 'x' } });

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_event');
    expect(deps.projection.lastSeq).toBe(next - 1);
  });

  it('reports its progress in /metrics', async () => {
    const metrics = await request(app).get('/metrics');

    expect(metrics.text).toMatch(new RegExp(`projection_last_seq\\{service="test"\\} ${deps.projection.lastSeq}`));
    expect(metrics.text).toContain('projection_events_total{type="PostCreated",outcome="applied",service="test"}');
  });
});
