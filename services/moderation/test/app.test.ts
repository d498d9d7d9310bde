import { batchLimits } from '@blog/common';
import type { EventServiceDeps } from '@blog/common';
import { createEventServiceDeps, makeTempDir, metricValue, startAppUnderTest, type AppUnderTest, signedFetch, waitFor } from '@blog/testing';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModerationApp } from '../src/app.js';
import { createModerationProjection, type ModerationState } from '../src/domain/moderation.js';

/** The statuses of every CommentModerated the bus holds for a comment; undefined while there is none. */
async function verdictsIn(busUrl: string, commentId: string): Promise<string[] | undefined> {
  const log = (await (await signedFetch(`${busUrl}/events`)).json()) as Array<{ type: string; data: { id: string; status: string } }>;
  const verdicts = log.filter((event) => event.type === 'CommentModerated' && event.data.id === commentId).map((event) => event.data.status);
  return verdicts.length > 0 ? verdicts : undefined;
}

describe('moderation API', () => {
  let service: AppUnderTest<ModerationState>;
  let deps: EventServiceDeps<ModerationState>;
  let app: Express;

  beforeAll(async () => {
    service = await startAppUnderTest(createModerationProjection(['orange']), createModerationApp);
    ({ deps, app } = service);
  });
  afterAll(() => service.close());

  it('when CommentCreated is delivered (twice), then exactly one CommentModerated with the verdict is in the log', async () => {
    await deps.bus.publish({ type: 'PostCreated', data: { id: 'm-p1', title: 't' } });
    const created = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'm-c1', postId: 'm-p1', content: 'Orange juice', status: 'pending' } });

    expect((await request(app).post('/events').send(created)).body).toEqual({ status: 'applied', lastSeq: created.seq, maxBatch: batchLimits.maxEvents });
    expect((await request(app).post('/events').send(created)).body).toEqual({ status: 'duplicate', lastSeq: created.seq, maxBatch: batchLimits.maxEvents });

    // The verdict leaves through the outbox right after the ack.
    const verdicts = await waitFor(async () => {
      const log = (await (await signedFetch(`${service.bus.url}/events`)).json()) as Array<{ type: string; data: object }>;
      const found = log.filter((event) => event.type === 'CommentModerated');
      return found.length > 0 ? found : undefined;
    });
    expect(verdicts).toEqual([
      expect.objectContaining({ data: { id: 'm-c1', postId: 'm-p1', content: 'Orange juice', status: 'rejected' } }),
    ]);
  });

  it('when moderation loses its state and sees the comment again, then it republishes the verdict, the bus confirms it, and the log keeps one verdict', async () => {
    const freshDir = await makeTempDir();
    const fresh = await createEventServiceDeps(createModerationProjection(['orange']), { busUrl: service.bus.url, dataDir: freshDir.path });

    await fresh.projection.catchUp();

    // The replayed comment's verdict leaves through the outbox, and the bus answers it as the one it has.
    await waitFor(async () => ((await metricValue(fresh.metrics, 'projection_outbox_published_total')) === 1 ? true : undefined), { what: 'the verdict to be republished' });
    expect(fresh.projection.outboxPending).toBe(0);
    expect(await metricValue(fresh.metrics, 'projection_outbox_adopted_total')).toBe(0);
    expect(await metricValue(fresh.metrics, 'projection_outbox_dead_letters_total')).toBe(0);
    const log = (await (await signedFetch(`${service.bus.url}/events`)).json()) as Array<{ type: string }>;
    expect(log.filter((event) => event.type === 'CommentModerated')).toHaveLength(1);
    await fresh.projection.close();
    await freshDir.remove();
  });

  it('when moderation loses its state and its blocked words changed, then the logged verdict stands, and later comments are moderated', async () => {
    await deps.bus.publish({ type: 'PostCreated', data: { id: 'm-p2', title: 't' } });
    const applePie = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'm-c2', postId: 'm-p2', content: 'apple pie', status: 'pending' } });
    await request(app).post('/events').send(applePie);
    await waitFor(() => verdictsIn(service.bus.url, 'm-c2'));
    const freshDir = await makeTempDir();
    const fresh = await createEventServiceDeps(createModerationProjection(['orange', 'apple']), { busUrl: service.bus.url, dataDir: freshDir.path });

    // The replay decides "apple pie" again, rejected now, under the id of the approval in the log.
    await fresh.projection.catchUp();
    const later = await deps.bus.publish({ type: 'CommentCreated', data: { id: 'm-c3', postId: 'm-p2', content: 'apple crumble', status: 'pending' } });
    await fresh.projection.deliver(later);

    expect(await waitFor(() => verdictsIn(service.bus.url, 'm-c3'))).toEqual(['rejected']);
    expect(await verdictsIn(service.bus.url, 'm-c2')).toEqual(['approved']);
    expect(fresh.projection.state.get('m-c2')).toBe('approved');
    await waitFor(() => (fresh.projection.outboxPending === 0 ? true : undefined), { what: 'the outbox to drain' });
    expect(await metricValue(fresh.metrics, 'projection_outbox_adopted_total')).toBe(1);
    await fresh.projection.close();
    await freshDir.remove();
  });

  it('only exposes the internal routes', async () => {

    expect((await request(app).get('/posts')).status).toBe(404);
    expect((await request(app).get('/healthz')).status).toBe(200);
  });
});
