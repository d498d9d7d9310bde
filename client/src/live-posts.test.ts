import type { CommentView, LiveComment, LivePost } from '@blog/common/contract';
import { describe, expect, it } from 'vitest';
import {
  applyCreatedComments,
  applyCreatedPost,
  applyLiveComment,
  applyLivePost,
  applyOlderPage,
  applySnapshot,
  emptyFeed,
  failLoadingOlder,
  mergeComments,
  nextPageRequest,
  retryDelayMs,
  shownPosts,
  startLoadingOlder,
  type PostsFeed,
} from './live-posts';
import { pageSize } from './paging';
import { aComment, aLivePost, aPost, createFakeHistory, pageOf, withoutCursor, type FakeHistory } from './test-fakes';

function shownIds(feed: PostsFeed): string[] {
  return shownPosts(feed).map((post) => post.id);
}

/** Newest first, as the page shows them. */
function idsNewestFirst(posts: readonly LivePost[]): string[] {
  return posts.toReversed().map((post) => post.id);
}

/** The `comment` frame the stream sends for `comment` of `post`. */
function commentFrame(post: LivePost, comment: CommentView): LiveComment {
  return { postId: post.id, cursor: post.cursor, comment };
}

function shownPost(feed: PostsFeed, id: string) {
  return shownPosts(feed).find((post) => post.id === id);
}

/** Reads the next page from `history` the way the hook does, and applies the answer. */
/** The second page requested and already read, its answer not yet applied; a comment for its oldest post. */
function olderPageOnItsWay() {
  const history = createFakeHistory(pageSize + 3);
  const feed = applySnapshot(emptyFeed, history.newestPage());
  const request = nextPageRequest(feed, 1)!;
  return { history, loading: startLoadingOlder(feed, request), request, pageReadEarlier: history.page(request), oldest: history.posts[0]!, comment: aComment() };
}

function loadNextPage(feed: PostsFeed, history: FakeHistory, id = 1): PostsFeed {
  const request = nextPageRequest(feed, id);
  if (!request) throw new Error('there is no next page to read');
  return applyOlderPage(startLoadingOlder(feed, request), request, history.page(request));
}

describe('mergeComments', () => {
  it('when the incoming list approves a pending comment, then the comment shows approved', () => {
    // Arrange
    const pending = aComment({ status: 'pending' });

    // Act
    const merged = mergeComments([pending], [{ ...pending, status: 'approved' }]);

    // Assert
    expect(merged).toEqual([{ ...pending, status: 'approved' }]);
  });

  it('when the incoming list says pending for a comment already rejected, then it stays rejected', () => {
    // Arrange
    const rejected = aComment({ status: 'rejected' });

    // Act
    const merged = mergeComments([rejected], [{ ...rejected, status: 'pending' }]);

    // Assert
    expect(merged).toEqual([rejected]);
  });

  it('when one final verdict meets another, then the first one shown stays', () => {
    // Arrange
    const approved = aComment({ status: 'approved' });

    // Act
    const merged = mergeComments([approved], [{ ...approved, status: 'rejected' }]);

    // Assert
    expect(merged).toEqual([approved]);
  });

  it('when the incoming list lacks a comment already shown, then it is kept after the incoming ones', () => {
    // Arrange
    const older = aComment();
    const justCreated = aComment({ status: 'pending' });

    // Act
    const merged = mergeComments([older, justCreated], [older]);

    // Assert
    expect(merged).toEqual([older, justCreated]);
  });
});

describe('applySnapshot', () => {
  it('when the first snapshot arrives, then its page is shown in its order and is where older pages start', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 2);
    const page = history.newestPage();

    // Act
    const feed = applySnapshot(emptyFeed, page);

    // Assert
    expect(shownPosts(feed)).toEqual(page.posts);
    expect(nextPageRequest(feed, 1)).toEqual({ id: 1, before: page.nextCursor, limit: pageSize });
  });

  it('when the snapshot holds every post, then there is nothing older to read', () => {
    // Act
    const feed = applySnapshot(emptyFeed, createFakeHistory(3).newestPage());

    // Assert
    expect(nextPageRequest(feed, 1)).toBeUndefined();
  });

  it('when a reconnect snapshot predates what this tab created or saw, then nothing shown is lost or set back', () => {
    // Arrange
    const approved = aComment({ status: 'approved' });
    const post = aPost({ comments: [approved] });
    const createdHere = { id: 'created-here', title: 'Mine' };
    const feed = applyCreatedPost(applySnapshot(emptyFeed, pageOf([post])), createdHere);

    // Act
    const after = applySnapshot(feed, pageOf([{ ...post, comments: [{ ...approved, status: 'pending' }] }]));

    // Assert
    expect(shownPosts(after)).toEqual([{ ...createdHere, comments: [] }, post]);
  });

  it('when a reconnect snapshot comes after older pages were read, then they stay below it, due to be read again', () => {
    // Arrange
    const history = createFakeHistory(pageSize * 2 + 1);
    const feed = loadNextPage(applySnapshot(emptyFeed, history.newestPage()), history);
    const shownBefore = shownIds(feed);

    // Act
    const after = applySnapshot(feed, history.newestPage());

    // Assert
    expect(shownIds(after)).toEqual(shownBefore);
    expect(after.stale?.posts.map((post) => post.id)).toEqual(shownBefore.slice(pageSize));
    expect(nextPageRequest(after, 7)).toEqual({ id: 7, before: history.newestPage().nextCursor, limit: pageSize });
  });

  it('when posts were created while disconnected, then they go on top and the posts they push off the newest page stay, due to be read again', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 5);
    const feed = applySnapshot(emptyFeed, history.newestPage());
    const shownBefore = shownIds(feed);
    const createdMeanwhile = [history.add(), history.add()];

    // Act
    const after = applySnapshot(feed, history.newestPage());

    // Assert
    expect(shownIds(after)).toEqual([...idsNewestFirst(createdMeanwhile), ...shownBefore]);
    expect(after.stale?.posts.map((post) => post.id)).toEqual(shownBefore.slice(-2));
  });

  it('when the reconnect snapshot reaches as far down as the screen did, then nothing is due to be read again', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 5);
    const feed = applySnapshot(emptyFeed, history.newestPage());

    // Act
    const after = applySnapshot(feed, history.newestPage());

    // Assert
    expect(after.stale).toBeNull();
    expect(shownIds(after)).toEqual(shownIds(feed));
  });

  it('when a post announced by the stream is pushed off the newest page by a reconnect, then it stays, due to be read again', () => {
    // Arrange
    const history = createFakeHistory(pageSize);
    let feed = applySnapshot(emptyFeed, history.newestPage());
    const announced = history.add();
    feed = applyLivePost(feed, announced);
    for (let created = 0; created < pageSize; created += 1) history.add();

    // Act
    const after = applySnapshot(feed, history.newestPage());

    // Assert
    expect(after.fresh).toEqual([]);
    expect(after.stale?.posts.map((post) => post.id)).toEqual([announced.id, ...shownIds(feed).slice(1)]);
  });
});

describe('applyLivePost', () => {
  it('when a post on the newest page changes, then it takes the new title and comments and the others stay', () => {
    // Arrange
    const comment = aComment({ status: 'pending' });
    const changed = aLivePost({ comments: [comment] });
    const other = aPost();
    const feed = applySnapshot(emptyFeed, pageOf([withoutCursor(changed), other]));
    const update = { ...changed, title: 'Edited title', comments: [{ ...comment, status: 'approved' as const }, aComment()] };

    // Act
    const after = applyLivePost(feed, update);

    // Assert
    expect(shownPosts(after)).toEqual([withoutCursor(update), other]);
  });

  it('when a post on an older page read later changes, then it is updated in place', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const feed = loadNextPage(applySnapshot(emptyFeed, history.newestPage()), history);
    const oldest = history.posts[0]!;
    const comment = aComment();

    // Act
    const after = applyLivePost(feed, history.update(oldest.id, () => ({ comments: [comment] })));

    // Assert
    expect(shownPost(after, oldest.id)?.comments).toEqual([comment]);
    expect(shownIds(after)).toEqual(shownIds(feed));
  });

  it('when a post not on screen sorts above the newest page, then it goes on top', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const feed = applySnapshot(emptyFeed, history.newestPage());
    const created = history.add();

    // Act
    const after = applyLivePost(feed, created);

    // Assert
    expect(shownPosts(after)[0]).toEqual(withoutCursor(created));
    expect(shownIds(after).slice(1)).toEqual(shownIds(feed));
  });

  it('when every post is on screen and a post not on screen arrives, then it goes on top', () => {
    // Arrange
    const feed = applySnapshot(emptyFeed, pageOf([]));
    const created = aLivePost();

    // Act
    const after = applyLivePost(feed, created);

    // Assert
    expect(shownPosts(after)).toEqual([withoutCursor(created)]);
  });

  it('when a post not on screen sorts below the pages read, then it is ignored', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const feed = applySnapshot(emptyFeed, history.newestPage());

    // Act
    const after = applyLivePost(feed, history.update(history.posts[0]!.id, () => ({ comments: [aComment()] })));

    // Assert
    expect(after).toBe(feed);
  });

  it('when a post not loaded changes while its page is on its way, then the page shows the change even if read before it', () => {
    // Arrange
    const { history, loading, request, pageReadEarlier, oldest, comment } = olderPageOnItsWay();

    // Act
    const held = applyLivePost(loading, history.update(oldest.id, () => ({ comments: [comment] })));
    const after = applyOlderPage(held, request, pageReadEarlier);

    // Assert
    expect(shownPost(after, oldest.id)?.comments).toEqual([comment]);
  });

  it('when new posts arrive, then the newest cursor is on top and a post created here without a cursor stays above them until its frame', () => {
    // Arrange
    const history = createFakeHistory(2);
    const earlier = history.add();
    const createdHere = history.add();
    const later = history.add();
    let feed = applySnapshot(emptyFeed, pageOf(history.posts.slice(0, 2).toReversed().map(withoutCursor)));
    feed = applyCreatedPost(feed, { id: createdHere.id, title: createdHere.title });

    // Act
    feed = applyLivePost(applyLivePost(feed, later), earlier);

    // Assert
    expect(shownIds(feed).slice(0, 3)).toEqual([createdHere.id, later.id, earlier.id]);

    // Act
    feed = applyLivePost(feed, createdHere);

    // Assert
    expect(shownIds(feed).slice(0, 3)).toEqual([later.id, createdHere.id, earlier.id]);
  });
});

describe('applyLiveComment', () => {
  it('when a comment is added to a post on the newest page, then it goes after the comments shown and nothing else changes', () => {
    // Arrange
    const first = aComment();
    const post = aLivePost({ comments: [first] });
    const other = aPost();
    const feed = applySnapshot(emptyFeed, pageOf([withoutCursor(post), other]));
    const added = aComment({ status: 'pending' });

    // Act
    const after = applyLiveComment(feed, commentFrame(post, added));

    // Assert
    expect(shownPosts(after)).toEqual([{ ...withoutCursor(post), comments: [first, added] }, other]);
  });

  it('when a comment shown pending is moderated, then its status advances in place, the others keep their order', () => {
    // Arrange
    const pending = aComment({ status: 'pending' });
    const later = aComment();
    const post = aLivePost({ comments: [pending, later] });
    const feed = applySnapshot(emptyFeed, pageOf([withoutCursor(post)]));

    // Act
    const after = applyLiveComment(feed, commentFrame(post, { ...pending, status: 'rejected' }));

    // Assert
    expect(shownPost(after, post.id)?.comments).toEqual([{ ...pending, status: 'rejected' }, later]);
  });

  it('when a frame says pending for a comment already shown approved, then it stays approved', () => {
    // Arrange
    const approved = aComment({ status: 'approved' });
    const post = aLivePost({ comments: [approved] });
    const feed = applySnapshot(emptyFeed, pageOf([withoutCursor(post)]));

    // Act
    const after = applyLiveComment(feed, commentFrame(post, { ...approved, status: 'pending' }));

    // Assert
    expect(shownPost(after, post.id)?.comments).toEqual([approved]);
  });

  it('when a comment comes for a post created here, then the post gets the comment and its cursor, and sorts by it', () => {
    // Arrange
    const history = createFakeHistory(1);
    let feed = applySnapshot(emptyFeed, history.newestPage());
    const createdHere = history.add();
    const newer = history.add();
    feed = applyCreatedPost(feed, { id: createdHere.id, title: createdHere.title });
    feed = applyLivePost(feed, newer);
    const comment = aComment({ status: 'pending' });

    // Act
    const after = applyLiveComment(feed, commentFrame(createdHere, comment));

    // Assert
    expect(after.fresh.map((entry) => [entry.post.id, entry.cursor])).toEqual([
      [newer.id, newer.cursor],
      [createdHere.id, createdHere.cursor],
    ]);
    expect(shownPost(after, createdHere.id)?.comments).toEqual([comment]);
  });

  it('when a comment comes for a post on an older page read later, then it is added there', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const feed = loadNextPage(applySnapshot(emptyFeed, history.newestPage()), history);
    const oldest = history.posts[0]!;
    const comment = aComment();

    // Act
    const after = applyLiveComment(feed, commentFrame(oldest, comment));

    // Assert
    expect(shownPost(after, oldest.id)?.comments).toEqual([comment]);
    expect(shownIds(after)).toEqual(shownIds(feed));
  });

  it('when a comment comes for a post below the pages read, then the feed is unchanged', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const feed = applySnapshot(emptyFeed, history.newestPage());

    // Act
    const after = applyLiveComment(feed, commentFrame(history.posts[0]!, aComment()));

    // Assert
    expect(after).toBe(feed);
  });

  it('when a comment comes for a post whose page is on its way, then the page shows it even if read before it', () => {
    // Arrange
    const { loading, request, pageReadEarlier, oldest, comment } = olderPageOnItsWay();

    // Act
    const held = applyLiveComment(loading, commentFrame(oldest, comment));
    const after = applyOlderPage(held, request, pageReadEarlier);

    // Assert
    expect(shownPost(after, oldest.id)?.comments).toEqual([comment]);
  });
});

describe('reading older pages', () => {
  it('when pages are read down to the oldest, then every post shows newest first and nothing more is asked for', () => {
    // Arrange
    const history = createFakeHistory(pageSize * 2 + 1);
    let feed = applySnapshot(emptyFeed, history.newestPage());

    // Act
    feed = loadNextPage(loadNextPage(feed, history, 1), history, 2);

    // Assert
    expect(shownIds(feed)).toEqual(idsNewestFirst(history.posts));
    expect(nextPageRequest(feed, 3)).toBeUndefined();
  });

  it('when a page is on its way, then no second one is asked for', () => {
    // Arrange
    const history = createFakeHistory(pageSize * 3);
    const feed = applySnapshot(emptyFeed, history.newestPage());

    // Act
    const loading = startLoadingOlder(feed, nextPageRequest(feed, 1)!);

    // Assert
    expect(nextPageRequest(loading, 2)).toBeUndefined();
  });

  it('when a reconnect comes while a page is on its way, then its answer is dropped rather than leave a gap', () => {
    // Arrange
    const history = createFakeHistory(pageSize * 2);
    const feed = applySnapshot(emptyFeed, history.newestPage());
    const request = nextPageRequest(feed, 1)!;
    const answer = history.page(request);
    history.add();
    const reconnected = applySnapshot(startLoadingOlder(feed, request), history.newestPage());

    // Act
    const after = applyOlderPage(reconnected, request, answer);

    // Assert
    expect(after.pages).toEqual(reconnected.pages);
    expect(after.nextCursor).toBe(reconnected.nextCursor);
  });

  it('when reading a page fails, then the failure is kept to show and the same page can be asked for again', () => {
    // Arrange
    const history = createFakeHistory(pageSize * 2);
    const feed = applySnapshot(emptyFeed, history.newestPage());
    const request = nextPageRequest(feed, 1)!;

    // Act
    const failed = failLoadingOlder(startLoadingOlder(feed, request), request, 'The blog is unavailable right now.');

    // Assert
    expect(failed.older).toEqual({ status: 'failed', message: 'The blog is unavailable right now.' });
    expect(nextPageRequest(failed, 2)).toEqual({ ...request, id: 2 });
  });

  it('when the pages read before a reconnect are read again, then they show what the server has now and nothing shown is set back', () => {
    // Arrange
    const history = createFakeHistory(pageSize * 2 + 1);
    const feed = loadNextPage(applySnapshot(emptyFeed, history.newestPage()), history);
    const oldest = shownPosts(feed).at(-1)!;
    const approvedHere = aComment({ status: 'approved' });
    const seen = applyCreatedComments(feed, oldest.id, [approvedHere]);
    const missed = aComment();
    // Read before the verdict reached the query service: it must not take the approval back.
    history.update(oldest.id, () => ({ comments: [{ ...approvedHere, status: 'pending' }, missed] }));
    const reconnected = applySnapshot(seen, history.newestPage());

    // Act
    const refreshed = loadNextPage(reconnected, history);

    // Assert
    expect(refreshed.stale).toBeNull();
    expect(shownIds(refreshed)).toEqual(shownIds(feed));
    expect(shownPost(refreshed, oldest.id)?.comments).toEqual([approvedHere, missed]);
    expect(nextPageRequest(refreshed, 2)).toEqual({ id: 2, before: feed.nextCursor, limit: pageSize });
  });

  it('when more posts were created while disconnected than the snapshot holds, then the refresh also fills the gap below it', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 2);
    const feed = loadNextPage(applySnapshot(emptyFeed, history.newestPage()), history);
    for (let created = 0; created < pageSize + 3; created += 1) history.add();
    let after = applySnapshot(feed, history.newestPage());

    // Act
    for (let request = 1; after.stale; request += 1) after = loadNextPage(after, history, request);

    // Assert
    expect(shownIds(after)).toEqual(idsNewestFirst(history.posts));
  });
});

describe('applyCreatedComments', () => {
  it('when a 201 brings a stale pending status for a comment the stream already approved, then the approval stays', () => {
    // Arrange
    const comment = aComment({ status: 'approved' });
    const post = aPost({ comments: [comment] });

    // Act
    const feed = applyCreatedComments(applySnapshot(emptyFeed, pageOf([post])), post.id, [{ ...comment, status: 'pending' }]);

    // Assert
    expect(shownPost(feed, post.id)?.comments).toEqual([comment]);
  });

  it('when a 201 brings a new comment, then it is added to its post as pending', () => {
    // Arrange
    const existing = aComment();
    const post = aPost({ comments: [existing] });
    const created = aComment({ status: 'pending' });

    // Act
    const feed = applyCreatedComments(applySnapshot(emptyFeed, pageOf([post])), post.id, [existing, created]);

    // Assert
    expect(shownPost(feed, post.id)).toEqual({ ...post, comments: [existing, created] });
  });

  it('when the post is not on screen, then the feed is unchanged', () => {
    // Arrange
    const feed = applySnapshot(emptyFeed, pageOf([aPost()]));

    // Act
    const after = applyCreatedComments(feed, 'unknown-post', [aComment({ status: 'pending' })]);

    // Assert
    expect(after).toBe(feed);
  });
});

describe('applyCreatedPost', () => {
  it('when a post is created, then it is shown on top with no comments', () => {
    // Arrange
    const shown = aPost();

    // Act
    const feed = applyCreatedPost(applySnapshot(emptyFeed, pageOf([shown])), { id: 'new-post', title: 'Hello' });

    // Assert
    expect(shownPosts(feed)).toEqual([{ id: 'new-post', title: 'Hello', comments: [] }, shown]);
  });

  it('when the stream delivered the post first, then its comments are kept', () => {
    // Arrange
    const post = aLivePost({ comments: [aComment()] });
    const feed = applyLivePost(applySnapshot(emptyFeed, pageOf([])), post);

    // Act
    const after = applyCreatedPost(feed, { id: post.id, title: post.title });

    // Assert
    expect(after).toBe(feed);
  });
});

describe('retryDelayMs', () => {
  it('when attempts keep failing, then the delay doubles from 1 s up to 10 s', () => {
    // Act
    const delays = [0, 1, 2, 3, 4, 5].map(retryDelayMs);

    // Assert
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
  });

  it('when the server asked for a longer wait, then that wait is kept; a shorter one changes nothing', () => {
    // Act
    const delays = [retryDelayMs(0, 12_000), retryDelayMs(4, 12_000), retryDelayMs(3, 500)];

    // Assert
    expect(delays).toEqual([12_000, 12_000, 8_000]);
  });
});
