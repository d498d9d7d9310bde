import type { EventEnvelope } from '@blog/common';
import { describe, expect, it } from 'vitest';
import { postsProjection } from '../src/domain/posts.js';

const postCreated = (seq: number, id: string, title: string): EventEnvelope => ({ id: `e${seq}`, seq, type: 'PostCreated', data: { id, title } });

describe('applyPostEvent', () => {
  it('when a post is created, then it is kept; a duplicate changes nothing', () => {
    const state = postsProjection.initialState();

    expect(postsProjection.apply(state, postCreated(1, 'p1', 'first'))).toBe(true);
    expect(postsProjection.apply(state, postCreated(1, 'p1', 'first'))).toBe(false);

    expect([...state.posts.values()]).toEqual([{ id: 'p1', title: 'first' }]);
  });

  it('when other events arrive, then they are not the posts service’s business', () => {
    const state = postsProjection.initialState();

    const changed = postsProjection.apply(state, { id: 'e1', seq: 1, type: 'CommentCreated', data: { id: 'c1', postId: 'p1', content: 'hi', status: 'pending' } });

    expect(changed).toBe(false);
    expect(state.posts.size).toBe(0);
  });

  it('when snapshotted and restored, then the state is the same', () => {
    const state = postsProjection.initialState();
    postsProjection.apply(state, postCreated(1, 'p1', 'first'));
    postsProjection.apply(state, postCreated(2, 'p2', 'second'));

    const restored = postsProjection.fromSnapshot(JSON.parse(JSON.stringify(postsProjection.toSnapshot(state))));

    expect(restored).toEqual(state);
  });
});
