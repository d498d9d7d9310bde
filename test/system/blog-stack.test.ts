import { describe, expect, it } from 'vitest';
import { signedFetch } from '@blog/testing';
import {
  byId,
  commentsOfPost,
  createComment,
  createPost,
  duplicates,
  expectedVerdict,
  pollUntil,
  postsOfPostsService,
  queryView,
  readAllEvents,
  unique,
  useStack,
  waitUntilSettled,
  type CommentView,
  type PostView,
  type StoredEvent,
} from './helpers.js';

/**
 * Black-box system tests: the five built services as real processes on 127.0.0.1, talked to over
 * HTTP only, and killed or restarted the way an orchestrator would. One stack serves the whole file;
 * the tests run in order and each creates its own data, so later tests also check that the data of
 * earlier ones survived what happened since.
 */

const stack = useStack();

/** Everything the tests created and know the outcome of, for the completeness checks. */
const created = {
  posts: new Map<string, string>(),
  comments: new Map<string, { postId: string; content: string }>(),
};

async function newPost(label: string): Promise<{ id: string; title: string }> {
  const title = unique(label);
  const { status, body } = await createPost(stack(), title);
  expect({ status, body }).toEqual({ status: 201, body: { id: expect.any(String) as string, title } });
  created.posts.set(body.id, title);
  return body;
}

async function newComment(postId: string, content: string): Promise<CommentView> {
  const { status, body } = await createComment(stack(), postId, content);
  expect(status, JSON.stringify(body)).toBe(201);
  const mine = body.filter((comment) => comment.content === content);
  expect(mine).toEqual([{ id: expect.any(String) as string, content, status: 'pending' }]);
  created.comments.set(mine[0]!.id, { postId, content });
  return mine[0]!;
}

const isFinal = (comments: readonly CommentView[], count: number) => comments.length === count && comments.every((comment) => comment.status !== 'pending');

describe('the blog stack', () => {
  it('when a post gets the comments "hello" and "Orange juice", then query shows the first approved and the second rejected', async () => {
    // Arrange
    const post = await newPost('Moderation');

    // Act
    const hello = await newComment(post.id, 'hello');
    const second = await createComment(stack(), post.id, 'Orange juice');

    // Assert: the answer lists the post's comments so far, the new one pending.
    expect(second.status).toBe(201);
    expect(second.body).toEqual([
      { id: hello.id, content: 'hello', status: expect.stringMatching(/^(pending|approved)$/) as string },
      { id: expect.any(String) as string, content: 'Orange juice', status: 'pending' },
    ]);
    const orange = second.body[1]!;
    created.comments.set(orange.id, { postId: post.id, content: orange.content });
    const expected: PostView = {
      id: post.id,
      title: post.title,
      comments: [
        { id: hello.id, content: 'hello', status: 'approved' },
        { id: orange.id, content: 'Orange juice', status: 'rejected' },
      ],
    };
    const inQuery = await pollUntil(async () => (await queryView(stack()))[post.id], (p) => p !== undefined && isFinal(p.comments, 2), 'verdicts in query');
    expect(inQuery).toEqual(expected);
    const inComments = await pollUntil(() => commentsOfPost(stack(), post.id), (list) => isFinal(list, 2), 'verdicts in comments');
    expect(inComments).toEqual(expected.comments);
  });

  it('when a comment is posted to a post that does not exist, then comments answers 404 with a JSON error', async () => {
    // Arrange
    const missingId = unique('no-such-post').replace(' ', '-');

    // Act
    const { status, body } = await createComment(stack(), missingId, 'hello?');

    // Assert
    expect({ status, body }).toEqual({ status: 404, body: { error: { code: 'post_not_found', message: expect.any(String) as string } } });
  });

  it('when moderation is SIGKILLed, then 20 comments are still accepted (201), stay pending, and all end up approved once it is back', async () => {
    // Arrange
    const post = await newPost('Moderation down');
    await stack().moderation.kill();
    const contents = Array.from({ length: 20 }, (_, i) => `${unique('while moderation is down')} #${i}`);

    // Act: all 20 at once, while moderation is dead.
    const answers = await Promise.all(contents.map((content) => createComment(stack(), post.id, content)));

    // Assert: every one accepted and pending; nobody could have approved anything.
    expect(answers.map((answer) => answer.status)).toEqual(contents.map(() => 201));
    const comments = contents.map((content, i) => {
      const mine = answers[i]!.body.filter((comment) => comment.content === content);
      expect(mine).toEqual([{ id: expect.any(String) as string, content, status: 'pending' }]);
      created.comments.set(mine[0]!.id, { postId: post.id, content });
      return mine[0]!;
    });
    const pending = await pollUntil(async () => (await queryView(stack()))[post.id], (p) => p?.comments.length === 20, 'the 20 comments in query');
    expect(byId(pending?.comments ?? [])).toEqual(byId(comments));

    // Act: moderation comes back (same port, same data).
    await stack().moderation.start();

    // Assert: it catches up on what it missed and every comment gets its verdict, everywhere.
    const approved = comments.map((comment) => ({ ...comment, status: 'approved' }));
    const inQuery = await pollUntil(async () => (await queryView(stack()))[post.id], (p) => p !== undefined && isFinal(p.comments, 20), 'approvals in query');
    expect({ ...inQuery, comments: byId(inQuery?.comments ?? []) }).toEqual({ id: post.id, title: post.title, comments: byId(approved) });
    const inComments = await pollUntil(() => commentsOfPost(stack(), post.id), (list) => isFinal(list, 20), 'approvals in comments');
    expect(byId(inComments)).toEqual(byId(approved));
  });

  it('when query is SIGKILLed and restarted, then its view is complete and no comment appears twice', async () => {
    // Arrange: data query has certainly seen, then data it can only learn from the bus after the restart.
    const before = await newPost('Before query crash');
    await newComment(before.id, 'nice post');
    await newComment(before.id, 'ORANGE alert');
    await pollUntil(async () => (await queryView(stack()))[before.id], (p) => p !== undefined && isFinal(p.comments, 2), 'query to see the first post');

    // Act
    await stack().query.kill();
    const during = await newPost('While query is down');
    await newComment(during.id, 'written while query was dead');
    await stack().query.start();

    // Assert: every post and comment created so far, each once, with its verdict.
    const complete = (view: Record<string, PostView>) =>
      [...created.posts.keys()].every((id) => view[id] !== undefined) &&
      [...created.comments].every(([id, { postId }]) => view[postId]?.comments.some((c) => c.id === id && c.status !== 'pending'));
    const view = await pollUntil(() => queryView(stack()), complete, 'query to be complete after its restart');
    for (const [id, title] of created.posts) {
      const expectedComments = [...created.comments].filter(([, c]) => c.postId === id).map(([commentId, c]) => ({ id: commentId, content: c.content, status: expectedVerdict(c.content) }));
      expect({ ...view[id], comments: byId(view[id]?.comments ?? []) }).toEqual({ id, title, comments: byId(expectedComments) });
    }
    for (const post of Object.values(view)) expect(duplicates(post.comments.map((c) => c.id)), `comments twice in post ${post.id}`).toEqual([]);
    expect(duplicates(Object.values(view).flatMap((post) => post.comments.map((c) => c.id)))).toEqual([]);
    expect(Object.keys(view).sort()).toEqual(Object.keys(await postsOfPostsService(stack())).sort());
  });

  it('when the bus is SIGKILLed during a burst of 200 post creations from 40 concurrent clients, then every 201 post is in query and posts exactly once and the rest got 503, never 500', async () => {
    // Arrange
    const batch = unique('burst');
    const titles = Array.from({ length: 200 }, (_, i) => `${batch} #${i}`);
    let succeeded = 0;
    let killed: Promise<void> | undefined;

    // Act: 200 creations from 40 concurrent clients; the bus dies (SIGKILL) the moment the 20th 201
    // arrives. (Not all 200 in one go: the bus group-commits, and 200 simultaneous requests are all on
    // disk in one or two fsyncs before the first answer comes back, so the kill would miss the burst.)
    const outcomes: Array<{ title: string; status: number; body: unknown }> = [];
    let next = 0;
    const client = async () => {
      while (next < titles.length) {
        const title = titles[next++]!;
        try {
          const { status, body } = await createPost(stack(), title);
          if (status === 201 && ++succeeded === 20) killed = stack().bus.kill();
          outcomes.push({ title, status, body });
        } catch (error) {
          outcomes.push({ title, status: 0, body: `network error: ${String(error)}` });
        }
      }
    };
    await Promise.all(Array.from({ length: 40 }, client));
    await killed;
    const ok = outcomes.filter((o) => o.status === 201);
    const refused = outcomes.filter((o) => o.status === 503);
    const networkErrors = outcomes.filter((o) => o.status === 0);
    console.log(`bus SIGKILLed during the burst: ${ok.length} x 201, ${refused.length} x 503, ${networkErrors.length} network errors (of ${outcomes.length})`);

    // Assert: the answers. A 201 carries the post; anything else is a 503 with a JSON error.
    expect(killed, 'the bus was killed after 20 posts succeeded').toBeDefined();
    expect(outcomes.filter((o) => ![201, 503, 0].includes(o.status))).toEqual([]);
    for (const o of ok) expect(o.body).toEqual({ id: expect.any(String) as string, title: o.title });
    for (const o of refused) expect(o.body).toMatchObject({ error: { code: expect.any(String) as string, message: expect.any(String) as string } });
    expect(ok.length).toBeGreaterThanOrEqual(20);
    expect(outcomes).toHaveLength(200);
    expect(refused.length + networkErrors.length, 'requests that failed because the bus was dead').toBeGreaterThan(0);

    // Act: the bus comes back on the same port and data.
    await stack().bus.start();

    // Assert: every acknowledged post reached posts and query, exactly once; a refused one at most once.
    const okPosts = ok.map((o) => o.body as { id: string; title: string });
    for (const post of okPosts) created.posts.set(post.id, post.title);
    const view = await pollUntil(() => queryView(stack()), (v) => okPosts.every((p) => v[p.id] !== undefined), 'query to have every acknowledged post');
    const posts = await pollUntil(() => postsOfPostsService(stack()), (p) => okPosts.every((post) => p[post.id] !== undefined), 'posts to have every acknowledged post');
    for (const post of okPosts) {
      expect(view[post.id]).toEqual({ ...post, comments: [] });
      expect(posts[post.id]).toEqual(post);
    }
    const titleCount = (title: string, of: Array<{ title: string }>) => of.filter((p) => p.title === title).length;
    for (const post of okPosts) expect(titleCount(post.title, Object.values(view)), post.title).toBe(1);
    for (const o of [...refused, ...networkErrors]) expect(titleCount(o.title, Object.values(view)), o.title).toBeLessThanOrEqual(1);
    // A 503 means "not known to be stored": the bus may have written the event just before it died.
    const storedAnyway = [...refused, ...networkErrors].filter((o) => titleCount(o.title, Object.values(view)) === 1).length;
    console.log(`of the ${refused.length + networkErrors.length} failed creations, ${storedAnyway} were stored anyway (the bus died before answering)`);
    const burstEvents = (await readAllEvents(stack().bus)).filter((e) => e.type === 'PostCreated' && String(e.data.title).startsWith(batch));
    expect(duplicates(burstEvents.map((e) => String(e.data.title)))).toEqual([]);
    expect(okPosts.filter((post) => !burstEvents.some((e) => e.data.id === post.id))).toEqual([]);

    // Assert: the stack works again, and posts and query converge on the same posts.
    await newPost('After the bus came back');
    await waitUntilSettled(stack(), 'posts and query to agree after the bus restart');
  });

  it('when each of the five services is stopped gracefully (SIGTERM) and started again, then it exits 0 and all data is unchanged', async () => {
    // Arrange: fresh data, everything settled, and a picture of every public read model.
    const post = await newPost('Graceful restarts');
    await newComment(post.id, 'survives restarts');
    await newComment(post.id, 'an orange survives too');
    await waitUntilSettled(stack(), 'the stack to settle before the restarts');
    const picture = async () => {
      const posts = await postsOfPostsService(stack());
      const comments = Object.fromEntries(await Promise.all(Object.keys(posts).map(async (id) => [id, await commentsOfPost(stack(), id)] as const)));
      return { posts, comments, query: await queryView(stack()), events: await readAllEvents(stack().bus) };
    };
    const before = await picture();
    expect(before.query[post.id]?.comments.map((c) => c.status)).toEqual(['approved', 'rejected']);

    for (const service of stack().all) {
      // Act
      const exitCode = await service.stop();
      await service.start();

      // Assert
      expect({ service: service.name, exitCode }).toEqual({ service: service.name, exitCode: 0 });
      const after = await picture();
      expect(after.posts, `posts after restarting ${service.name}`).toEqual(before.posts);
      expect(after.comments, `comments after restarting ${service.name}`).toEqual(before.comments);
      expect(after.query, `query after restarting ${service.name}`).toEqual(before.query);
      expect(after.events, `the bus log after restarting ${service.name}`).toEqual(before.events);
    }

    // Assert: and the restarted stack still does its job end to end.
    const later = await newPost('After the restarts');
    const comment = await newComment(later.id, 'still moderated');
    const inQuery = await pollUntil(async () => (await queryView(stack()))[later.id], (p) => p !== undefined && isFinal(p.comments, 1), 'a verdict after the restarts');
    expect(inQuery).toEqual({ ...later, comments: [{ ...comment, status: 'approved' }] });
  });

  it('when the whole log is read from the bus, page by page, then every event is there exactly once with seq 1..N contiguous', async () => {
    // Arrange: nothing in flight.
    const view = await waitUntilSettled(stack(), 'the stack to settle before reading the log');

    // Act
    const paged = await readAllEvents(stack().bus, 7);
    const whole = await signedFetch(`${stack().bus.url}/events`);

    // Assert: numbering, paging and ids.
    expect(paged.length).toBeGreaterThan(0);
    expect(paged.map((e) => e.seq)).toEqual(Array.from({ length: paged.length }, (_, i) => i + 1));
    expect(duplicates(paged.map((e) => e.id))).toEqual([]);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('x-head-seq')).toBe(String(paged.length));
    expect(await whole.json()).toEqual(paged);
    const tail = await signedFetch(`${stack().bus.url}/events?after=${paged.length - 2}&limit=5`);
    expect(await tail.json()).toEqual(paged.slice(-2));

    // Assert: one event per fact. Each post created once; each comment created, moderated and
    // announced once; and every one the tests created is in the log.
    const ofType = (type: string) => paged.filter((e) => e.type === type).map((e) => String(e.data.id));
    expect(ofType('PostCreated').sort()).toEqual(Object.keys(view).sort());
    const commentIds = Object.values(view).flatMap((post) => post.comments.map((c) => c.id)).sort();
    expect(ofType('CommentCreated').sort()).toEqual(commentIds);
    expect(ofType('CommentModerated').sort()).toEqual(commentIds);
    expect(ofType('CommentUpdated').sort()).toEqual(commentIds);
    expect([...created.posts.keys()].filter((id) => !ofType('PostCreated').includes(id))).toEqual([]);
    expect([...created.comments.keys()].filter((id) => !commentIds.includes(id))).toEqual([]);
    const verdicts = paged.filter((e): e is StoredEvent & { data: { id: string } } => e.type === 'CommentModerated');
    for (const [id, { content }] of created.comments) expect(verdicts.find((e) => e.data.id === id)?.data).toMatchObject({ id, content, status: expectedVerdict(content) });
  });
});
