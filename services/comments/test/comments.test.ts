import type { CommentStatus, EventEnvelope } from '@blog/common';
import { openInMemory } from '@blog/testing';
import { describe, expect, it } from 'vitest';
import { applyCommentEvent, commentsOf, commentsProjection, reactToCommentEvent } from '../src/domain/comments.js';

let seq = 0;
const envelope = (event: Omit<EventEnvelope, 'id' | 'seq'>) => ({ ...event, id: `e${++seq}`, seq }) as EventEnvelope;
const postCreated = (id: string) => envelope({ type: 'PostCreated', data: { id, title: 't' } });
const commentCreated = (id: string, postId: string) => envelope({ type: 'CommentCreated', data: { id, postId, content: `content of ${id}`, status: 'pending' } });
const commentModerated = (id: string, postId: string, status: Exclude<CommentStatus, 'pending'>) =>
  envelope({ type: 'CommentModerated', data: { id, postId, content: `content of ${id}`, status } });

describe('comments projection', () => {
  it('when a comment is created twice, then it is listed once, pending', () => {
    const state = openInMemory(commentsProjection);
    const created = commentCreated('c1', 'p1');
    for (const event of [postCreated('p1'), created, created]) applyCommentEvent(state, event);

    expect(commentsOf(state, 'p1')).toEqual([{ id: 'c1', content: 'content of c1', status: 'pending' }]);
    expect(state.hasPost('p1')).toBe(true);
  });

  it('when a verdict arrives, then the comment takes it and a CommentUpdated is published with an id derived from the verdict', () => {
    const state = openInMemory(commentsProjection);
    for (const event of [postCreated('p1'), commentCreated('c1', 'p1')]) applyCommentEvent(state, event);
    const verdict = commentModerated('c1', 'p1', 'approved');

    const reactions = reactToCommentEvent(state, verdict);
    applyCommentEvent(state, verdict);

    expect(reactions).toEqual([{ id: expect.stringMatching(/^comment-updated-/), type: 'CommentUpdated', data: { id: 'c1', postId: 'p1', content: 'content of c1', status: 'approved' } }]);
    expect(reactToCommentEvent(openInMemory(commentsProjection), verdict)).toEqual(reactions);
    expect(commentsOf(state, 'p1')[0]!.status).toBe('approved');
  });

  it('when a second verdict arrives for a decided comment, then nothing changes and nothing is published', () => {
    const state = openInMemory(commentsProjection);
    for (const event of [postCreated('p1'), commentCreated('c1', 'p1'), commentModerated('c1', 'p1', 'approved')]) applyCommentEvent(state, event);
    const conflicting = commentModerated('c1', 'p1', 'rejected');

    expect(reactToCommentEvent(state, conflicting)).toEqual([]);
    expect(applyCommentEvent(state, conflicting)).toBe(false);
    expect(commentsOf(state, 'p1')[0]!.status).toBe('approved');
  });

  it('when the verdict arrives before the comment, then the comment ends up decided, not pending', () => {
    const state = openInMemory(commentsProjection);
    for (const event of [postCreated('p1'), commentModerated('c1', 'p1', 'rejected'), commentCreated('c1', 'p1')]) applyCommentEvent(state, event);

    expect(commentsOf(state, 'p1')).toEqual([{ id: 'c1', content: 'content of c1', status: 'rejected' }]);
  });
});
