import { batchLimits } from '@blog/common';
import type { EventServiceDeps } from '@blog/common';
import { createEventServiceDeps, makeTempDir, startAppUnderTest, type AppUnderTest, signedFetch, waitFor } from '@blog/testing';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModerationApp } from '../src/app.js';
import { createModerationProjection, type ModerationState } from '../src/domain/moderation.js';

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

  it('when moderation loses its state and sees the comment again, then the bus still keeps one verdict', async () => {
    const freshDir = await makeTempDir();
    const fresh = await createEventServiceDeps(createModerationProjection(['orange']), { busUrl: service.bus.url, dataDir: freshDir.path });

    await fresh.projection.catchUp();
    // Give its outbox time to republish (the bus must recognise the id); close waits for the batch under way.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await fresh.projection.close();

    const log = (await (await signedFetch(`${service.bus.url}/events`)).json()) as Array<{ type: string }>;
    expect(log.filter((event) => event.type === 'CommentModerated')).toHaveLength(1);
    await freshDir.remove();
  });

  it('only exposes the internal routes', async () => {

    expect((await request(app).get('/posts')).status).toBe(404);
    expect((await request(app).get('/healthz')).status).toBe(200);
  });
});
