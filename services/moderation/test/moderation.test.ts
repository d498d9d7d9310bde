import type { EventEnvelope } from '@blog/common';
import { openInMemory } from '@blog/testing';
import { describe, expect, it } from 'vitest';
import { createModerationProjection, moderate } from '../src/domain/moderation.js';

describe('moderate', () => {
  it.each([
    ['hello', 'approved'],
    ['orange', 'rejected'],
    ['Orange juice', 'rejected'],
    ['I like ORANGES', 'rejected'],
    ['or ange', 'approved'],
    ['', 'approved'],
  ] as const)('when the content is "%s", then %s', (content, verdict) => {
    expect(moderate(content, ['orange'])).toBe(verdict);
  });

  it('when the block list has several words, then any of them rejects', () => {
    expect(moderate('a Banana split', ['orange', 'banana'])).toBe('rejected');
    expect(moderate('an apple', ['orange', 'banana'])).toBe('approved');
  });
});

describe('moderation projection', () => {
  const spec = createModerationProjection(['orange']);
  const commentCreated = (content: string): EventEnvelope => ({ id: 'source-event', seq: 7, type: 'CommentCreated', data: { id: 'c1', postId: 'p1', content, status: 'pending' } });

  it('when a comment is created, then one CommentModerated with the verdict is published', () => {
    const reactions = spec.react!(openInMemory(spec), commentCreated('Orange juice'));

    expect(reactions).toEqual([{ id: expect.any(String), type: 'CommentModerated', data: { id: 'c1', postId: 'p1', content: 'Orange juice', status: 'rejected' } }]);
  });

  it('when the same event is delivered again, then the verdict has the same id, so the bus stores it once', () => {
    const first = spec.react!(openInMemory(spec), commentCreated('hello'));
    const again = spec.react!(openInMemory(spec), commentCreated('hello'));

    expect(again).toEqual(first);
  });

  it('when other events arrive, then nothing is published', () => {
    expect(spec.react!(openInMemory(spec), { id: 'e', seq: 1, type: 'PostCreated', data: { id: 'p1', title: 't' } })).toEqual([]);
  });

  it('when a comment was decided, then it is not decided again, and the verdict in the log wins over today\'s rules', () => {
    const verdicts = openInMemory(spec);
    const created = commentCreated('hello');
    spec.apply(verdicts, created);

    expect(spec.react!(verdicts, created)).toEqual([]);
    expect(spec.apply(verdicts, { id: 'v', seq: 8, type: 'CommentModerated', data: { id: 'c1', postId: 'p1', content: 'hello', status: 'rejected' } })).toBe(true);
    expect(verdicts.get('c1')).toBe('rejected');
  });
});
