import { describe, expect, it } from 'vitest';
import {
  applyCreatedComments,
  applyCreatedPost,
  applyPostEvent,
  applySnapshot,
  mergeComments,
  retryDelayMs,
} from './live-posts';
import { aComment, aPost, viewOf } from './test-fakes';

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

describe('applyCreatedComments', () => {
  it('when a 201 brings a stale pending status for a comment the stream already approved, then the approval stays', () => {
    // Arrange
    const comment = aComment({ status: 'approved' });
    const post = aPost({ comments: [comment] });

    // Act
    const view = applyCreatedComments(viewOf(post), post.id, [{ ...comment, status: 'pending' }]);

    // Assert
    expect(view[post.id]?.comments).toEqual([comment]);
  });

  it('when a 201 brings a new comment, then it is added to its post as pending', () => {
    // Arrange
    const existing = aComment();
    const post = aPost({ comments: [existing] });
    const created = aComment({ status: 'pending' });

    // Act
    const view = applyCreatedComments(viewOf(post), post.id, [existing, created]);

    // Assert
    expect(view[post.id]).toEqual({ ...post, comments: [existing, created] });
  });

  it('when the post is not on screen, then the view is unchanged', () => {
    // Arrange
    const view = viewOf(aPost());

    // Act
    const after = applyCreatedComments(view, 'unknown-post', [aComment({ status: 'pending' })]);

    // Assert
    expect(after).toBe(view);
  });
});

describe('applyPostEvent', () => {
  it('when a post event arrives, then it replaces that post and leaves the others alone', () => {
    // Arrange
    const comment = aComment({ status: 'pending' });
    const changed = aPost({ comments: [comment] });
    const other = aPost();
    const update = { ...changed, title: 'Edited title', comments: [{ ...comment, status: 'approved' as const }, aComment()] };

    // Act
    const view = applyPostEvent(viewOf(changed, other), update);

    // Assert
    expect(view).toEqual(viewOf(update, other));
  });

  it('when a post event names a post not shown yet, then the post is added', () => {
    // Arrange
    const shown = aPost();
    const created = aPost();

    // Act
    const view = applyPostEvent(viewOf(shown), created);

    // Assert
    expect(Object.values(view)).toEqual([shown, created]);
  });
});

describe('applySnapshot', () => {
  it('when the first snapshot arrives, then the view is the snapshot', () => {
    // Arrange
    const snapshot = viewOf(aPost({ comments: [aComment()] }), aPost());

    // Act
    const view = applySnapshot({}, snapshot);

    // Assert
    expect(view).toEqual(snapshot);
  });

  it('when a reconnect snapshot predates what this tab created, then nothing shown is lost or set back', () => {
    // Arrange
    const approved = aComment({ status: 'approved' });
    const post = aPost({ comments: [approved] });
    const createdHere = aPost();
    const staleSnapshot = viewOf({ ...post, comments: [{ ...approved, status: 'pending' }] });

    // Act
    const view = applySnapshot(viewOf(post, createdHere), staleSnapshot);

    // Assert
    expect(Object.values(view)).toEqual([post, createdHere]);
  });
});

describe('applyCreatedPost', () => {
  it('when a post is created, then it is shown with no comments', () => {
    // Arrange
    const shown = aPost();

    // Act
    const view = applyCreatedPost(viewOf(shown), { id: 'new-post', title: 'Hello' });

    // Assert
    expect(view).toEqual({ ...viewOf(shown), 'new-post': { id: 'new-post', title: 'Hello', comments: [] } });
  });

  it('when the stream delivered the post first, then its comments are kept', () => {
    // Arrange
    const post = aPost({ comments: [aComment()] });

    // Act
    const view = applyCreatedPost(viewOf(post), { id: post.id, title: post.title });

    // Assert
    expect(view[post.id]).toEqual(post);
  });
});

describe('retryDelayMs', () => {
  it('when attempts keep failing, then the delay doubles from 1 s up to 10 s', () => {
    // Act
    const delays = [0, 1, 2, 3, 4, 5].map(retryDelayMs);

    // Assert
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
  });
});
