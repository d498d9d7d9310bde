import { startEventBus, testBusSecret, type ServiceProcess } from '@blog/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBusClient } from '../src/index.js';

describe('bus client', () => {
  let bus: ServiceProcess & { destroy: () => Promise<void> };

  beforeAll(async () => {
    bus = await startEventBus();
  });
  afterAll(() => bus.destroy());

  it('when more publishes wait than the queue holds, then the ones beyond it are refused at once with 503 publish_queue_full, and the others are stored', async () => {
    const client = createBusClient({ baseUrl: bus.url, timeoutMs: 2_000, secret: testBusSecret, maxQueuedPublishes: 2 });
    const post = (n: number) => ({ type: 'PostCreated' as const, data: { id: `p-queue-${n}`, title: `queued ${n}` } });

    // Called in one turn: the first leaves at once, two wait for it, the fourth finds the queue full.
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map((n) => client.publish(post(n))));

    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect((outcomes[3] as PromiseRejectedResult).reason).toMatchObject({ status: 503, code: 'publish_queue_full', message: expect.stringContaining('2 events are already waiting') });
    const titles = (await client.readEvents(0, 100)).events.map((event) => (event.data as { title: string }).title);
    expect(titles).toEqual(['queued 1', 'queued 2', 'queued 3']);
    // Once the queue has room again, publishing goes on.
    await expect(client.publish(post(5))).resolves.toMatchObject({ data: { title: 'queued 5' } });
    await client.close();
  });
});
