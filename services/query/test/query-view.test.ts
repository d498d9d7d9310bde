import type { CommentStatus, EventEnvelope } from '@blog/common';
import { describe, expect, it } from 'vitest';
import { openInMemory } from '@blog/testing';
import { applyToQueryView, queryProjection } from '../src/domain/query-view.js';

let seq = 0;
const envelope = (event: Omit<EventEnvelope, 'id' | 'seq'>) => ({ ...event, id: `e${++seq}`, seq }) as EventEnvelope;
const postCreated = (id: string, title = `title of ${id}`) => envelope({ type: 'PostCreated', data: { id, title } });
const commentCreated = (id: string, postId: string, content = `content of ${id}`) => envelope({ type: 'CommentCreated', data: { id, postId, content, status: 'pending' } });
const commentUpdated = (id: string, postId: string, status: CommentStatus, content = `content of ${id}`) => envelope({ type: 'CommentUpdated', data: { id, postId, content, status } });
const commentModerated = (id: string, postId: string, status: 'approved' | 'rejected', content = `content of ${id}`) =>
  envelope({ type: 'CommentModerated', data: { id, postId, content, status } });

const viewOf = (events: EventEnvelope[]) => {
  const view = openInMemory(queryProjection);
  for (const event of events) applyToQueryView(view, event);
  return Object.fromEntries([...view.pages()].flat().map((post) => [post.id, post]));
};

describe('applyToQueryView', () => {
  it('when the classic flow happens, then the view has the post with its moderated comment', () => {
    expect(viewOf([postCreated('p1'), commentCreated('c1', 'p1'), commentModerated('c1', 'p1', 'approved'), commentUpdated('c1', 'p1', 'approved')])).toEqual({
      p1: { id: 'p1', title: 'title of p1', comments: [{ id: 'c1', content: 'content of c1', status: 'approved' }] },
    });
  });

  it('when every event is delivered twice, then the view is the same as with each once', () => {
    const events = [postCreated('p1'), commentCreated('c1', 'p1'), commentUpdated('c1', 'p1', 'rejected')];

    expect(viewOf(events.flatMap((event) => [event, event]))).toEqual(viewOf(events));
  });

  it('when a stale pending update arrives after the verdict, then the status does not go back', () => {
    const view = viewOf([postCreated('p1'), commentCreated('c1', 'p1'), commentUpdated('c1', 'p1', 'approved'), commentUpdated('c1', 'p1', 'pending')]);

    expect(view.p1!.comments).toEqual([{ id: 'c1', content: 'content of c1', status: 'approved' }]);
  });

  it('when a second, conflicting verdict arrives, then the first one stands', () => {
    const view = viewOf([postCreated('p1'), commentCreated('c1', 'p1'), commentModerated('c1', 'p1', 'rejected'), commentUpdated('c1', 'p1', 'approved')]);

    expect(view.p1!.comments[0]!.status).toBe('rejected');
  });

  it('when the update arrives before the comment, then the comment keeps its final status', () => {
    const view = viewOf([postCreated('p1'), commentUpdated('c1', 'p1', 'approved'), commentCreated('c1', 'p1')]);

    expect(view.p1!.comments).toEqual([{ id: 'c1', content: 'content of c1', status: 'approved' }]);
  });

  it('when a comment arrives before its post, then it is attached once the post arrives', () => {
    const view = viewOf([commentCreated('c1', 'p1'), postCreated('p1')]);

    expect(view).toEqual({ p1: { id: 'p1', title: 'title of p1', comments: [{ id: 'c1', content: 'content of c1', status: 'pending' }] } });
  });

  it('when a post is created again with the same id, then the first one stays', () => {
    expect(viewOf([postCreated('p1', 'original'), postCreated('p1', 'impostor')]).p1!.title).toBe('original');
  });

  it('when pages are asked for, then they go newest first, each post once, with the cursor of the next page', () => {
    const view = openInMemory(queryProjection);
    const posts = ['a', 'b', 'c', 'd', 'e'].map((id) => postCreated(`page-${id}`));
    for (const event of posts) applyToQueryView(view, event);
    applyToQueryView(view, commentCreated('page-c1', 'page-b'));

    const first = view.page(2);
    const second = view.page(2, Number(first.nextCursor));
    const last = view.page(2, Number(second.nextCursor));

    expect(first.posts.map((post) => post.id)).toEqual(['page-e', 'page-d']);
    expect(second.posts.map((post) => post.id)).toEqual(['page-c', 'page-b']);
    expect(second.posts[1]!.comments).toEqual([{ id: 'page-c1', content: 'content of page-c1', status: 'pending' }]);
    expect(last).toEqual({ posts: [expect.objectContaining({ id: 'page-a' })], nextCursor: null });
  });

  it('when a post changes, then its live form has its comments and a cursor that sorts it among the pages', () => {
    const view = openInMemory(queryProjection);
    const older = postCreated('live-old');
    const newer = postCreated('live-new');
    for (const event of [older, newer, commentCreated('live-c', 'live-old')]) applyToQueryView(view, event);

    const live = view.livePost('live-old')!;

    expect(live).toEqual({ id: 'live-old', title: 'title of live-old', comments: [expect.objectContaining({ id: 'live-c' })], cursor: String(older.seq) });
    expect(Number(view.livePost('live-new')!.cursor)).toBeGreaterThan(Number(live.cursor));
    expect(view.livePost('unknown')).toBeUndefined();
  });
});
