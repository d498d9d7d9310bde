import type { EventEnvelope } from '@blog/common';
import { openInMemory } from '@blog/testing';
import { describe, expect, it } from 'vitest';
import { postsProjection } from '../src/domain/posts.js';

const postCreated = (seq: number, id: string, title: string): EventEnvelope => ({ id: `e${seq}`, seq, type: 'PostCreated', data: { id, title } });
const allPosts = (state: ReturnType<typeof postsProjection.open>) => [...state.pages()].flat();

describe('applyPostEvent', () => {
  it('when a post is created, then it is kept; a duplicate changes nothing', () => {
    const state = openInMemory(postsProjection);

    expect(postsProjection.apply(state, postCreated(1, 'p1', 'first'))).toBe(true);
    expect(postsProjection.apply(state, postCreated(1, 'p1', 'first'))).toBe(false);

    expect(allPosts(state)).toEqual([{ id: 'p1', title: 'first' }]);
  });

  it('when other events arrive, then they are not the posts service’s business', () => {
    const state = openInMemory(postsProjection);

    const changed = postsProjection.apply(state, { id: 'e1', seq: 1, type: 'CommentCreated', data: { id: 'c1', postId: 'p1', content: 'hi', status: 'pending' } });

    expect(changed).toBe(false);
    expect(allPosts(state)).toEqual([]);
  });

  it('when there are more posts than one page, then pages list every post once, in the order the log created them', () => {
    const state = openInMemory(postsProjection);
    for (let seq = 1; seq <= 7; seq += 1) postsProjection.apply(state, postCreated(seq * 3, `p${seq}`, `title ${seq}`));

    const pages = [...state.pages(3)];

    expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((post) => post.id)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
  });
});
