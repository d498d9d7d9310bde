import { limits, type EventServiceDeps, batchLimits } from '@blog/common';
import { createEventServiceDeps, makeTempDir, metricValue, startAppUnderTest, type AppUnderTest, signedFetch, waitFor } from '@blog/testing';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommentsApp } from '../src/app.js';
import { commentsProjection, type CommentsState } from '../src/domain/comments.js';

describe('comments API', () => {
  let service: AppUnderTest<CommentsState>;
  let deps: EventServiceDeps<CommentsState>;
  let app: Express;

  beforeAll(async () => {
    service = await startAppUnderTest(commentsProjection, createCommentsApp);
    ({ deps, app } = service);
  });
  afterAll(() => service.close());

  /** A post that exists in the log; this bus has no subscribers, so comments only learns of it by asking. */
  async function existingPost(): Promise<string> {
    const id = `post-${Math.random().toString(36).slice(2)}`;
    await deps.bus.publish({ type: 'PostCreated', data: { id, title: `title of ${id}` } });
    return id;
  }

  async function busLog(): Promise<Array<{ id: string; seq: number; type: string; data: Record<string, unknown> }>> {
    return (await (await signedFetch(`${service.bus.url}/events`)).json()) as Array<{ id: string; seq: number; type: string; data: Record<string, unknown> }>;
  }

  describe('POST /posts/:id/comments', () => {
    it('when the post exists in the log but was never delivered here, then comments catches up and answers 201 with the whole list', async () => {
      const postId = await existingPost();

      const first = await request(app).post(`/posts/${postId}/comments`).send({ content: 'first' });
      const second = await request(app).post(`/posts/${postId}/comments`).send({ content: 'second' });

      expect(first.status).toBe(201);
      expect(first.body).toEqual([{ id: expect.any(String), content: 'first', status: 'pending' }]);
      expect(second.status).toBe(201);
      expect(second.body).toEqual([first.body[0], { id: expect.any(String), content: 'second', status: 'pending' }]);
      expect((await request(app).get(`/posts/${postId}/comments`)).body).toEqual(second.body);
      const created = (await busLog()).filter((event) => event.type === 'CommentCreated' && event.data.postId === postId);
      expect(created.map((event) => event.data)).toEqual(second.body.map((comment: object) => ({ ...comment, postId })));
    });

    it.each(['unknown-post', 'x'.repeat(300), '..%2F..%2Fetc', '%F0%9F%8D%8A'])('when the post id is %s, then 404 and nothing is published', async (postId) => {
      const before = (await busLog()).length;

      const response = await request(app).post(`/posts/${postId}/comments`).send({ content: 'hello' });

      expect(response.status).toBe(404);
      expect(response.body).toEqual({ error: { code: 'post_not_found', message: expect.any(String) } });
      expect(await busLog()).toHaveLength(before);
    });

    it.each([
      ['no content', {}],
      ['empty content', { content: '' }],
      ['numeric content', { content: 7 }],
      ['content over the limit', { content: 'x'.repeat(limits.contentMaxLength + 1) }],
    ])('when the body has %s, then 400 and nothing is published', async (_case, body) => {
      const postId = await existingPost();
      const before = (await busLog()).length;

      const response = await request(app).post(`/posts/${postId}/comments`).send(body);

      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: { code: 'invalid_request', message: expect.stringContaining('content') } });
      expect(await busLog()).toHaveLength(before);
    });

    it('when the JSON is malformed or too large, then 400 or 413', async () => {
      const postId = await existingPost();

      const malformed = await request(app).post(`/posts/${postId}/comments`).set('content-type', 'application/json').send('{');
      const large = await request(app).post(`/posts/${postId}/comments`).send({ content: 'x'.repeat(limits.bodyMaxBytes) });

      expect(malformed.status).toBe(400);
      expect(malformed.body.error.code).toBe('malformed_json');
      expect(large.status).toBe(413);
    });
  });

  describe('GET /posts/:id/comments', () => {
    it('when the post has no comments, then 200 with an empty array', async () => {
      const response = await request(app).get('/posts/nobody-commented/comments');

      expect(response.status).toBe(200);
      expect(response.body).toEqual([]);
    });
  });

  describe('POST /events (CommentModerated)', () => {
    it('when a verdict is delivered twice, then the status is set and exactly one CommentUpdated is published', async () => {
      const postId = await existingPost();
      const [comment] = (await request(app).post(`/posts/${postId}/comments`).send({ content: 'judge me' })).body as Array<{ id: string }>;
      const verdict = await deps.bus.publish({ type: 'CommentModerated', data: { id: comment!.id, postId, content: 'judge me', status: 'approved' } });

      const first = await request(app).post('/events').send(verdict);
      const second = await request(app).post('/events').send(verdict);

      expect(first.body).toEqual({ status: 'applied', lastSeq: verdict.seq, maxBatch: batchLimits.maxEvents });
      expect(second.body).toEqual({ status: 'duplicate', lastSeq: verdict.seq, maxBatch: batchLimits.maxEvents });
      expect((await request(app).get(`/posts/${postId}/comments`)).body).toEqual([{ id: comment!.id, content: 'judge me', status: 'approved' }]);
      // The update leaves through the outbox right after the ack.
      const updates = await waitFor(async () => {
        const found = (await busLog()).filter((event) => event.type === 'CommentUpdated' && event.data.id === comment!.id);
        return found.length > 0 ? found : undefined;
      });
      expect(updates.map((event) => event.data)).toEqual([{ id: comment!.id, postId, content: 'judge me', status: 'approved' }]);
    });

    it('when the bus refuses a CommentUpdated waiting in the outbox (400), then it is set aside and the next verdict still becomes an update', async () => {
      const postId = await existingPost();
      const [comment] = (await request(app).post(`/posts/${postId}/comments`).send({ content: 'judge me too' })).body as Array<{ id: string }>;
      // An update left by a version whose schema this bus does not accept (a status it does not know).
      const refused = { id: `comment-updated-${comment!.id}-older`, type: 'CommentUpdated', data: { id: comment!.id, postId, content: 'judge me too', status: 'escalated' } };
      deps.projection.db.prepare('INSERT INTO outbox (event) VALUES (?)').run(JSON.stringify(refused));
      const verdict = await deps.bus.publish({ type: 'CommentModerated', data: { id: comment!.id, postId, content: 'judge me too', status: 'approved' } });

      await request(app).post('/events').send(verdict);

      const updates = await waitFor(async () => {
        const found = (await busLog()).filter((event) => event.type === 'CommentUpdated' && event.data.id === comment!.id);
        return found.length > 0 ? found : undefined;
      });
      expect(updates.map((event) => event.data)).toEqual([{ id: comment!.id, postId, content: 'judge me too', status: 'approved' }]);
      await waitFor(async () => ((await metricValue(deps.metrics, 'projection_outbox_pending')) === 0 ? true : undefined), { what: 'the outbox to drain' });
      const deadLetters = deps.projection.db.prepare('SELECT event, bus_status FROM outbox_dead_letters').all() as Array<{ event: string; bus_status: number }>;
      expect(deadLetters.map((row) => ({ event: JSON.parse(row.event) as unknown, status: row.bus_status }))).toEqual([{ event: refused, status: 400 }]);
      expect(await metricValue(deps.metrics, 'projection_outbox_dead_letters_total')).toBe(1);
    });

    it('when an event of an unknown type is delivered, then it is acknowledged and skipped', async () => {
      const head = (await busLog()).length;
      // Unknown types cannot be published to our bus; a delivery with the next sequence stands in for a newer producer's event.
      await request(app).post('/events').send({ id: 'future-event', seq: head + 1, type: 'PostLiked', data: { id: 'p' } });
      const response = await request(app).post('/events').send({ id: 'future-event', seq: head + 1, type: 'PostLiked', data: { id: 'p' } });

      expect(response.status).toBe(200);
      expect(response.body).toEqual({ status: 'duplicate', lastSeq: head + 1, maxBatch: batchLimits.maxEvents });
    });
  });

  it('when the bus is down, then a new comment fails fast with 503 JSON', async () => {
    const postId = await existingPost();
    await request(app).post(`/posts/${postId}/comments`).send({ content: 'seen' });
    const offlineDir = await makeTempDir();
    const offline = await createEventServiceDeps(commentsProjection, { busUrl: 'http://127.0.0.1:9', dataDir: offlineDir.path });

    const response = await request(createCommentsApp(offline)).post(`/posts/${postId}/comments`).send({ content: 'lost?' });

    expect(response.status).toBe(503);
    expect(response.body.error.code).toBe('event_bus_unavailable');
    await offline.projection.close();
    await offlineDir.remove();
  });
});
