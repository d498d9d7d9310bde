import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { commentsOfPost, createComment, createPost, pollUntil, queryView, readAllEvents, unique, useStack, type CommentView, type StoredEvent } from './helpers.js';

/**
 * Reactions (moderation's verdicts, comments' updates) leave through an outbox. One the bus refuses
 * must never hold up the ones after it: a verdict the log already holds under the same id stands,
 * any other refusal is set aside, counted and logged.
 */

const stack = useStack({ topology: { eventStore: 'file', busReplicas: 1, queryReplicas: 1 } });

/** The value of an unlabelled metric of a service (its only series). */
async function metricOf(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith(`${name}{`) || entry.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const statusIn = (comments: readonly CommentView[] | undefined, id: string) => comments?.find((comment) => comment.id === id)?.status;

/** Waits until comments and query both show the comment decided, and returns what each shows. */
async function decidedEverywhere(postId: string, commentId: string) {
  const own = await pollUntil(() => commentsOfPost(stack(), postId), (comments) => statusIn(comments, commentId) !== 'pending' && statusIn(comments, commentId) !== undefined, 'comments to show the verdict');
  const view = await pollUntil(() => queryView(stack()), (posts) => !['pending', undefined].includes(statusIn(posts[postId]?.comments, commentId)), 'query to show the verdict');
  return { comments: statusIn(own, commentId), query: statusIn(view[postId]?.comments, commentId) };
}

const verdictsOf = (events: readonly StoredEvent[], commentId: string) =>
  events.filter((event) => ['CommentModerated', 'CommentUpdated'].includes(event.type) && event.data.id === commentId).map((event) => `${event.type} ${String(event.data.status)}`);

describe('reactions the bus refuses', () => {
  it('when moderation restarts on an empty DATA_DIR with another blocked word, then "apple pie" keeps its logged verdict everywhere and new comments are still moderated', async () => {
    const post = (await createPost(stack(), unique('a post about pies'))).body;
    const applePie = (await createComment(stack(), post.id, 'apple pie')).body.at(-1)!;
    expect(await decidedEverywhere(post.id, applePie.id)).toEqual({ comments: 'approved', query: 'approved' });

    // A new pod with an emptyDir: no state, and the rules changed meanwhile.
    const { moderation } = stack();
    await moderation.stop();
    await rm(moderation.dataDir, { recursive: true, force: true });
    Object.assign(moderation.env, { BLOCKED_WORDS: 'orange,apple' });
    await moderation.start();
    const crumble = (await createComment(stack(), post.id, unique('apple crumble'))).body.at(-1)!;
    const plain = (await createComment(stack(), post.id, unique('plain cake'))).body.at(-1)!;

    expect(await decidedEverywhere(post.id, crumble.id)).toEqual({ comments: 'rejected', query: 'rejected' });
    expect(await decidedEverywhere(post.id, plain.id)).toEqual({ comments: 'approved', query: 'approved' });
    expect(await decidedEverywhere(post.id, applePie.id)).toEqual({ comments: 'approved', query: 'approved' });
    expect(verdictsOf(await readAllEvents(stack().bus), applePie.id)).toEqual(['CommentModerated approved', 'CommentUpdated approved']);
    await pollUntil(() => metricOf(moderation.url, 'projection_outbox_pending'), (pending) => pending === 0, "moderation's outbox to drain");
    expect(await metricOf(moderation.url, 'projection_outbox_adopted_total')).toBe(1);
    expect(await metricOf(moderation.url, 'projection_outbox_dead_letters_total')).toBe(0);
    expect(await metricOf(moderation.url, 'projection_outbox_stalled')).toBe(0);
    expect((await fetch(`${moderation.url}/readyz`)).status).toBe(200);
  });

  it('when the bus refuses a waiting reaction with 400, then it is set aside, counted in /metrics and logged as an error, and later comments are still moderated', async () => {
    const post = (await createPost(stack(), unique('a post for a refused verdict'))).body;
    // A verdict left in the outbox by a version whose schema this bus does not accept (a status it does not know).
    const { moderation } = stack();
    await moderation.stop();
    const refusedId = `comment-moderated-${randomUUID()}`;
    const db = new DatabaseSync(path.join(moderation.dataDir, 'state.db'));
    db.prepare('INSERT INTO outbox (event) VALUES (?)').run(
      JSON.stringify({ id: refusedId, type: 'CommentModerated', data: { id: 'c-escalated', postId: post.id, content: 'needs a human', status: 'escalated' } }),
    );
    db.close();
    await moderation.start();
    const later = (await createComment(stack(), post.id, unique('a later comment'))).body.at(-1)!;

    expect(await decidedEverywhere(post.id, later.id)).toEqual({ comments: 'approved', query: 'approved' });
    expect(await metricOf(moderation.url, 'projection_outbox_dead_letters_total')).toBe(1);
    expect(await metricOf(moderation.url, 'projection_outbox_dead_letters')).toBe(1);
    expect(await metricOf(moderation.url, 'projection_outbox_pending')).toBe(0);
    const logged = moderation
      .output()
      .split('\n')
      .filter((line) => line.includes(refusedId))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ level: 'error', eventId: refusedId, busStatus: 400, busAnswer: expect.objectContaining({ code: 'invalid_request' }) }));
    expect((await readAllEvents(stack().bus)).some((event) => event.id === refusedId)).toBe(false);
  });
});
