import { http } from '@blog/testing';
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { createPost, pollUntil, queryView, unique, useStack } from './helpers.js';

/**
 * A consumer's state belongs to one log. When the bus comes back with another one (its volume was
 * replaced), the consumers must stop applying, say so on /readyz, and keep serving what they have,
 * instead of taking the new log's low sequence numbers for events they already applied.
 */

const stack = useStack({ topology: { eventStore: 'file', busReplicas: 1, queryReplicas: 1 } });

interface Readiness {
  status: string;
  state: string;
  reason?: string;
}

describe('a consumer and the log it was built from', () => {
  it('when the bus restarts on an empty data dir, then every consumer refuses the new log, stays alive and unready with the reason, and a rebuild follows the new log', async () => {
    const before = (await createPost(stack(), unique('before the bus lost its data'))).body;
    await pollUntil(() => queryView(stack()), (view) => view[before.id] !== undefined, 'query to show the first post');

    await stack().bus.stop();
    await rm(stack().bus.dataDir, { recursive: true, force: true });
    await stack().bus.start();
    const after = await createPost(stack(), unique('on the new log'));

    expect(after.status).toBe(201);
    for (const service of [stack().posts, stack().comments, stack().query, stack().moderation]) {
      const readiness = await pollUntil(
        () => http<Readiness>('GET', `${service.url}/readyz`),
        (response) => response.status === 503,
        `${service.name} to refuse the new log`,
      );
      expect(readiness.body).toEqual({ status: 'not_ready', state: 'blocked', reason: expect.stringMatching(/the bus's data was replaced.*delete .*state\.db/s) });
      expect((await http('GET', `${service.url}/healthz`)).status).toBe(200);
    }
    const kept = await queryView(stack());
    expect(kept[before.id]).toBeDefined();
    expect(kept[after.body.id]).toBeUndefined();

    // The rebuild the reason describes: stop, delete the state, start.
    await stack().query.stop();
    await rm(stack().query.dataDir, { recursive: true, force: true });
    await stack().query.start();
    const rebuilt = await queryView(stack());
    expect(Object.keys(rebuilt)).toEqual([after.body.id]);
  });
});
