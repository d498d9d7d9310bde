import { natsServerAvailable, startStack, waitFor, type Stack } from '@blog/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { createComment, createPost, duplicates, expectedVerdict, postsOfPostsService, queryView, readAllEvents, unique, type PostView } from './helpers.js';

/**
 * The log on JetStream, for real: a nats-server of our own (so that it can be crashed), two bus
 * processes in front of it and two query processes that each follow the log. What it proves:
 * killing a bus and a query during a burst loses and duplicates nothing, and a restarted JetStream
 * server resumes delivery. (The general suites also run on this topology: the `system-jetstream`
 * project.)
 */

const runnable = natsServerAvailable() || process.env.CI === 'true';
const CONVERGE_MS = 60_000;

describe.runIf(runnable)('the blog on JetStream, two buses and two queries', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({}, { eventStore: 'jetstream', busReplicas: 2, queryReplicas: 2 });
  }, 90_000);
  afterAll(() => stack?.destroy(), 60_000);
  beforeEach(() => {
    onTestFailed(() => {
      for (const service of stack.all) console.error(`----- ${service.name} :${service.port} (${service.running ? 'running' : 'not running'}):\n${service.output()}`);
    });
  });

  /** Until every query process shows exactly `expected` (titles and final comment statuses), bounded. */
  async function everyQueryShows(expected: Map<string, { title: string; comments: Map<string, string> }>): Promise<Array<Record<string, PostView>>> {
    return waitFor(
      async () => {
        const views = await Promise.all(stack.queries.map((query) => fetch(`${query.url}/posts`).then((r) => r.json() as Promise<Record<string, PostView>>)));
        const complete = views.every((view) =>
          [...expected].every(([id, post]) => view[id]?.title === post.title && [...post.comments].every(([content, status]) => view[id]!.comments.some((c) => c.content === content && c.status === status))),
        );
        return complete ? views : undefined;
      },
      { timeoutMs: CONVERGE_MS, intervalMs: 200, what: 'every query process to show every acknowledged post and comment' },
    );
  }

  it('when a bus and a query are SIGKILLed during a burst, then every acknowledged post and comment is in both queries exactly once', async () => {
    const acknowledged = new Map<string, { title: string; comments: Map<string, string> }>();
    const seed = await createPost(stack, unique('burst seed'));
    acknowledged.set(seed.body.id, { title: seed.body.title, comments: new Map() });
    const killed = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await Promise.all([stack.buses[1]!.kill(), stack.queries[1]!.kill()]);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await Promise.all([stack.buses[1]!.start(), stack.queries[1]!.start()]);
    })();
    // For 6 s, ten clients: posts through bus 0, comments through bus 1 (the one killed).
    const until = Date.now() + 6_000;
    await Promise.all(
      Array.from({ length: 10 }, async (_, client) => {
        for (let n = 0; Date.now() < until; n += 1) {
          if (client % 2 === 0) {
            const title = unique(`burst ${client}.${n}`);
            const { status, body } = await createPost(stack, title).catch(() => ({ status: 0, body: { id: '', title } }));
            if (status === 201) acknowledged.set(body.id, { title, comments: new Map() });
          } else {
            const content = unique(n % 3 === 0 ? `Orange ${client}.${n}` : `burst ${client}.${n}`);
            const { status } = await createComment(stack, seed.body.id, content).catch(() => ({ status: 0 }));
            if (status === 201) acknowledged.get(seed.body.id)!.comments.set(content, expectedVerdict(content));
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }),
    );
    await killed;

    const views = await everyQueryShows(acknowledged);

    const acknowledgedComments = acknowledged.get(seed.body.id)!.comments.size;
    console.log(`burst: ${acknowledged.size} posts and ${acknowledgedComments} comments acknowledged while bus 1 and query 1 were killed`);
    expect(acknowledged.size).toBeGreaterThan(50);
    expect(acknowledgedComments).toBeGreaterThan(20);
    for (const view of views) {
      const posts = Object.values(view);
      expect(duplicates(posts.map((post) => post.title))).toEqual([]);
      expect(duplicates(posts.flatMap((post) => post.comments.map((comment) => comment.id)))).toEqual([]);
      expect(duplicates(view[seed.body.id]!.comments.map((comment) => comment.content))).toEqual([]);
    }
    expect(views[1]).toEqual(views[0]);
    // The log itself: contiguous, every id once, one verdict per comment.
    const events = await readAllEvents(stack.buses[0]!, 500);
    expect(events.map((event) => event.seq)).toEqual(events.map((_, at) => at + 1));
    expect(duplicates(events.map((event) => event.id))).toEqual([]);
    const verdicts = events.filter((event) => event.type === 'CommentModerated').map((event) => String(event.data.id));
    expect(duplicates(verdicts)).toEqual([]);
    expect(Object.keys(await postsOfPostsService(stack)).sort()).toEqual(Object.keys(views[0]!).sort());
  });

  it('when the JetStream server is killed and restarted, then publishing and delivery resume and nothing stored is lost', async () => {
    const before = await createPost(stack, unique('before the crash'));
    await everyQueryShows(new Map([[before.body.id, { title: before.body.title, comments: new Map() }]]));
    const storedBefore = await readAllEvents(stack.bus, 500);
    expect(storedBefore.filter((event) => event.type === 'PostCreated').map((event) => event.data.id)).toContain(before.body.id);

    await stack.nats!.kill();
    // A hang would end in the request's own timeout (an AbortError), and fail the test here.
    const whileDown = await createPost(stack, unique('while JetStream is down'));
    await stack.nats!.start();

    // Not acknowledged while down: a clear 503 from posts, never a 500, a dropped connection or a hang.
    expect(whileDown).toMatchObject({ status: 503, body: { error: { code: 'event_bus_unavailable' } } });
    const after = await waitFor(
      async () => {
        const { status, body } = await createPost(stack, unique('after the restart'));
        return status === 201 ? body : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'the bus to publish again after JetStream restarted' },
    );
    const comment = unique('hello after the restart');
    expect((await createComment(stack, after.id, comment)).status).toBe(201);
    await everyQueryShows(
      new Map([
        [before.body.id, { title: before.body.title, comments: new Map() }],
        [after.id, { title: after.title, comments: new Map([[comment, 'approved']]) }],
      ]),
    );
    // Every event stored before the crash is still there, at the same place, on both bus processes.
    for (const bus of stack.buses) expect((await readAllEvents(bus, 500)).slice(0, storedBefore.length), `${bus.name} :${bus.port}`).toEqual(storedBefore);
    expect((await queryView(stack))[after.id]?.comments).toEqual([expect.objectContaining({ content: comment, status: 'approved' })]);
  });
});
