import type { EventEnvelope } from '@blog/common';
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
    const reactions = spec.react!(spec.initialState(), commentCreated('Orange juice'));

    expect(reactions).toEqual([{ id: expect.any(String), type: 'CommentModerated', data: { id: 'c1', postId: 'p1', content: 'Orange juice', status: 'rejected' } }]);
  });

  it('when the same event is delivered again, then the verdict has the same id, so the bus stores it once', () => {
    const first = spec.react!(spec.initialState(), commentCreated('hello'));
    const again = spec.react!(spec.initialState(), commentCreated('hello'));

    expect(again).toEqual(first);
  });

  it('when other events arrive, then nothing is published', () => {
    expect(spec.react!(spec.initialState(), { id: 'e', seq: 1, type: 'PostCreated', data: { id: 'p1', title: 't' } })).toEqual([]);
  });
});
