import type { CommentView, LivePost } from '@blog/common/contract';
import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiRequestError, type BlogApi } from './api';
import { App } from './App';
import { pageSize } from './paging';
import {
  aComment,
  aLivePost,
  aPost,
  createDeferred,
  createFakeApi,
  createFakeHistory,
  createFakeStream,
  pageOf,
  withoutCursor,
} from './test-fakes';

function renderApp(api: BlogApi = createFakeApi()) {
  const stream = createFakeStream();
  const user = userEvent.setup();
  render(<App api={api} subscribe={stream.subscribe} />);
  return { stream, user };
}

function articleTitled(title: string): HTMLElement {
  return screen.getByRole('article', { name: title });
}

function shownTitles(): string[] {
  return screen.queryAllByRole('heading', { level: 2 }).map((heading) => heading.textContent ?? '');
}

/** Titles as the page should show them: newest first. */
function titlesNewestFirst(posts: readonly LivePost[]): string[] {
  return posts.toReversed().map((post) => post.title);
}

function loadOlderButton(): HTMLElement {
  return screen.getByRole('button', { name: 'Load older posts' });
}

const unavailable = () => new ApiRequestError({ code: 'http_error', status: 502, message: 'The blog is unavailable right now. Try again in a moment.' });

describe('App: loading and empty states', () => {
  it('when no snapshot has arrived yet, then it says posts are loading', () => {
    // Act
    renderApp();

    // Assert
    expect(screen.getByRole('heading', { level: 1, name: 'Blog' })).toBeInTheDocument();
    expect(screen.getByText('Loading posts…')).toBeInTheDocument();
    expect(screen.getByText('Connecting…')).toBeInTheDocument();
  });

  it('when the snapshot has no posts, then it shows the empty state', () => {
    // Arrange
    const { stream } = renderApp();

    // Act
    stream.sendSnapshot(pageOf([]));

    // Assert
    expect(screen.getByText(/No posts yet/)).toBeInTheDocument();
    expect(screen.queryByText('Loading posts…')).not.toBeInTheDocument();
    expect(screen.getByText('Live')).toBeInTheDocument();
  });

  it('when the snapshot has posts, then each is an article with its title and comments, newest first', () => {
    // Arrange
    const older = aPost({ title: 'Older post', comments: [aComment({ content: 'Approved words' }), aComment({ status: 'pending' })] });
    const newer = aPost({ title: 'Newer post' });
    const { stream } = renderApp();

    // Act
    stream.sendSnapshot(pageOf([newer, older]));

    // Assert
    expect(shownTitles()).toEqual(['Newer post', 'Older post']);
    const comments = within(articleTitled('Older post')).getAllByRole('listitem');
    expect(comments.map((item) => item.textContent)).toEqual(['Approved words', 'This comment is awaiting moderation']);
    expect(within(articleTitled('Newer post')).getByText('No comments yet.')).toBeInTheDocument();
  });
});

describe('App: live updates', () => {
  it('when a post event arrives, then that post is replaced without a reload', () => {
    // Arrange
    const comment = aComment({ status: 'pending', content: 'Hello there' });
    const post = aLivePost({ title: 'Watched post', comments: [comment] });
    const { stream } = renderApp();
    stream.sendSnapshot(pageOf([withoutCursor(post)]));

    // Act
    stream.sendPost({ ...post, comments: [{ ...comment, status: 'approved' }, aComment({ status: 'rejected' })] });

    // Assert
    const items = within(articleTitled('Watched post')).getAllByRole('listitem');
    expect(items.map((item) => item.textContent)).toEqual(['Hello there', 'This comment has been rejected']);
  });

  it('when comment frames arrive, then the new comment appears and a verdict shows in place', () => {
    // Arrange
    const comment = aComment({ status: 'pending', content: 'Hello there' });
    const post = aLivePost({ title: 'Watched post', comments: [comment] });
    const { stream } = renderApp();
    stream.sendSnapshot(pageOf([withoutCursor(post)]));
    const added = aComment({ status: 'approved', content: 'Second' });

    // Act
    stream.sendComment({ postId: post.id, cursor: post.cursor, comment: added });
    stream.sendComment({ postId: post.id, cursor: post.cursor, comment: { ...comment, status: 'approved' } });

    // Assert
    const items = within(articleTitled('Watched post')).getAllByRole('listitem');
    expect(items.map((item) => item.textContent)).toEqual(['Hello there', 'Second']);
  });

  it('when another tab creates a post, then it appears', () => {
    // Arrange
    const { stream } = renderApp();
    stream.sendSnapshot(pageOf([]));

    // Act
    stream.sendPost(aLivePost({ title: 'From another tab' }));

    // Assert
    expect(articleTitled('From another tab')).toBeInTheDocument();
    expect(screen.queryByText(/No posts yet/)).not.toBeInTheDocument();
  });
});

describe('App: creating posts and comments', () => {
  it('when a post is created, then it appears at once, before the stream reports it', async () => {
    // Arrange
    const { stream, user } = renderApp();
    stream.sendSnapshot(pageOf([]));

    // Act
    await user.type(screen.getByRole('textbox', { name: 'Post title' }), 'Brand new{Enter}');

    // Assert
    expect(await screen.findByRole('article', { name: 'Brand new' })).toBeInTheDocument();
    expect(screen.getByRole('textbox', { name: 'Post title' })).toHaveValue('');
  });

  it('when a comment is added, then it appears at once as pending and turns approved when the stream says so', async () => {
    // Arrange
    const api = createFakeApi();
    const post = aLivePost({ title: 'Commented post' });
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(pageOf([withoutCursor(post)]));
    const article = articleTitled('Commented post');

    // Act
    await user.type(within(article).getByRole('textbox', { name: 'Add a comment' }), 'First!{Enter}');

    // Assert
    expect(await within(article).findByRole('listitem')).toHaveTextContent('This comment is awaiting moderation');
    expect(api.createComment).toHaveBeenCalledExactlyOnceWith(post.id, 'First!');

    // Act
    const [created] = (await api.createComment.mock.results[0]?.value) as CommentView[];
    stream.sendPost({ ...post, comments: [{ ...created!, status: 'approved' }] });

    // Assert
    expect(within(article).getByRole('listitem')).toHaveTextContent('First!');
  });

  it('when the stream approves a comment before its 201 arrives, then the stale pending does not take it back', async () => {
    // Arrange
    const reply = createDeferred<CommentView[]>();
    const api = createFakeApi();
    api.createComment.mockReturnValue(reply.promise);
    const post = aLivePost({ title: 'Racy post' });
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(pageOf([withoutCursor(post)]));
    const article = articleTitled('Racy post');
    await user.type(within(article).getByRole('textbox', { name: 'Add a comment' }), 'Quick verdict{Enter}');
    const created = aComment({ content: 'Quick verdict', status: 'pending' });

    // Act
    stream.sendPost({ ...post, comments: [{ ...created, status: 'approved' }] });
    await act(async () => {
      reply.resolve([created]);
      await reply.promise;
    });

    // Assert
    expect(within(article).getAllByRole('listitem').map((item) => item.textContent)).toEqual(['Quick verdict']);
  });

  it('when creating a post fails, then the form shows why and the page keeps working', async () => {
    // Arrange
    const api = createFakeApi();
    api.createPost.mockRejectedValue(unavailable());
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(pageOf([aPost({ title: 'Still here' })]));

    // Act
    await user.type(screen.getByRole('textbox', { name: 'Post title' }), 'Lost post{Enter}');

    // Assert (an unhandled rejection would also fail this run: vitest reports them as errors)
    expect(await screen.findByText('The blog is unavailable right now. Try again in a moment.')).toBeInTheDocument();
    expect(screen.getByRole('textbox', { name: 'Post title' })).toHaveValue('Lost post');
    expect(screen.getByRole('button', { name: 'Create post' })).toBeEnabled();
    expect(articleTitled('Still here')).toBeInTheDocument();
  });
});

describe('App: when the server is unreachable', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('when the stream fails before the first snapshot, then an alert with Retry replaces the loading state', () => {
    // Arrange
    const { stream } = renderApp();

    // Act
    stream.fail();

    // Assert
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent("Can't reach the server");
    expect(within(alert).getByRole('button', { name: 'Retry' })).toBeInTheDocument();
    expect(screen.queryByText('Loading posts…')).not.toBeInTheDocument();
    expect(screen.getByText('Reconnecting…')).toBeInTheDocument();
    expect(stream.isOpen).toBe(false);
  });

  it('when the stream fails after posts were shown, then the posts stay on screen under the alert', () => {
    // Arrange
    const { stream } = renderApp();
    stream.sendSnapshot(pageOf([aPost({ title: 'Kept post' })]));

    // Act
    stream.fail();

    // Assert
    expect(screen.getByRole('alert')).toHaveTextContent("Can't reach the server");
    expect(articleTitled('Kept post')).toBeInTheDocument();
  });

  it('when Retry is pressed, then it reconnects and the alert goes once the snapshot arrives', async () => {
    // Arrange
    const { stream, user } = renderApp();
    stream.fail();

    // Act
    await user.click(screen.getByRole('button', { name: 'Retry' }));

    // Assert
    expect(stream.connectionCount).toBe(2);
    expect(stream.isOpen).toBe(true);

    // Act
    stream.sendSnapshot(pageOf([aPost({ title: 'Back again' })]));

    // Assert
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(articleTitled('Back again')).toBeInTheDocument();
    expect(screen.getByText('Live')).toBeInTheDocument();
  });

  it('when nobody presses Retry, then it reconnects by itself after 1 s, then 2 s', () => {
    // Arrange
    vi.useFakeTimers();
    const { stream } = renderApp();

    // Act
    stream.fail();
    act(() => {
      vi.advanceTimersByTime(999);
    });

    // Assert
    expect(stream.connectionCount).toBe(1);

    // Act
    act(() => {
      vi.advanceTimersByTime(1);
    });

    // Assert
    expect(stream.connectionCount).toBe(2);

    // Act
    stream.fail();
    act(() => {
      vi.advanceTimersByTime(1_999);
    });

    // Assert
    expect(stream.connectionCount).toBe(2);

    // Act
    act(() => {
      vi.advanceTimersByTime(1);
    });

    // Assert
    expect(stream.connectionCount).toBe(3);
    expect(screen.getByRole('alert')).toBeInTheDocument();
  });

  it('when the server is full and asks for 12 s with Retry-After, then it reconnects after 12 s, not 1 s', () => {
    // Arrange
    vi.useFakeTimers();
    const { stream } = renderApp();

    // Act
    stream.fail({ retryAfterMs: 12_000 });
    act(() => {
      vi.advanceTimersByTime(11_999);
    });

    // Assert
    expect(stream.connectionCount).toBe(1);
    expect(screen.getByRole('alert')).toBeInTheDocument();

    // Act
    act(() => {
      vi.advanceTimersByTime(1);
    });

    // Assert
    expect(stream.connectionCount).toBe(2);
  });

  it('when a reconnect succeeds, then the next failure waits 1 s again', () => {
    // Arrange
    vi.useFakeTimers();
    const { stream } = renderApp();
    stream.fail();
    act(() => {
      vi.advanceTimersByTime(1_000);
    });
    stream.fail();
    act(() => {
      vi.advanceTimersByTime(2_000);
    });
    stream.sendSnapshot(pageOf([]));

    // Act
    stream.fail();
    act(() => {
      vi.advanceTimersByTime(1_000);
    });

    // Assert
    expect(stream.connectionCount).toBe(4);
  });
});

describe('App: older posts', () => {
  it('when the snapshot is the newest page of many, then that page shows, newest first, with a way to load older posts', () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const { stream } = renderApp(createFakeApi(history));

    // Act
    stream.sendSnapshot(history.newestPage());

    // Assert
    expect(shownTitles()).toEqual(titlesNewestFirst(history.posts).slice(0, pageSize));
    expect(loadOlderButton()).toBeEnabled();
  });

  it('when the snapshot holds every post, then there is no way to load older posts', () => {
    // Arrange
    const history = createFakeHistory(3);
    const { stream } = renderApp(createFakeApi(history));

    // Act
    stream.sendSnapshot(history.newestPage());

    // Assert
    expect(shownTitles()).toEqual(titlesNewestFirst(history.posts));
    expect(screen.queryByRole('button', { name: 'Load older posts' })).not.toBeInTheDocument();
  });

  it('when Load older posts is pressed, then the next page appears below, and the button goes once the oldest post is shown', async () => {
    // Arrange
    const history = createFakeHistory(pageSize * 2 + 3);
    const api = createFakeApi(history);
    const { stream, user } = renderApp(api);
    const snapshot = history.newestPage();
    stream.sendSnapshot(snapshot);

    // Act
    await user.click(loadOlderButton());

    // Assert
    await waitFor(() => expect(shownTitles()).toEqual(titlesNewestFirst(history.posts).slice(0, pageSize * 2)));
    expect(api.getPostsPage).toHaveBeenCalledExactlyOnceWith({ before: snapshot.nextCursor, limit: pageSize });
    expect(loadOlderButton()).toBeEnabled();

    // Act
    await user.click(loadOlderButton());

    // Assert
    await waitFor(() => expect(shownTitles()).toEqual(titlesNewestFirst(history.posts)));
    expect(screen.queryByRole('button', { name: 'Load older posts' })).not.toBeInTheDocument();
  });

  it('when an older page is on its way, then the button is disabled and the page says it is loading', async () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const api = createFakeApi(history);
    const answer = createDeferred<ReturnType<typeof history.page>>();
    api.getPostsPage.mockReturnValueOnce(answer.promise);
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(history.newestPage());

    // Act
    await user.click(loadOlderButton());

    // Assert
    expect(loadOlderButton()).toBeDisabled();
    expect(screen.getByText('Loading older posts…')).toBeInTheDocument();

    // Act
    await act(async () => {
      answer.resolve(history.page(api.getPostsPage.mock.calls[0]![0]));
      await answer.promise;
    });

    // Assert
    expect(shownTitles()).toEqual(titlesNewestFirst(history.posts));
    expect(screen.queryByText('Loading older posts…')).not.toBeInTheDocument();
  });

  it('when loading older posts fails, then it says why, and pressing the button again retries', async () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const api = createFakeApi(history);
    api.getPostsPage.mockRejectedValueOnce(unavailable());
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(history.newestPage());

    // Act
    await user.click(loadOlderButton());

    // Assert
    expect(await screen.findByText("Couldn't load older posts. The blog is unavailable right now. Try again in a moment.")).toBeInTheDocument();
    expect(loadOlderButton()).toBeEnabled();
    expect(shownTitles()).toHaveLength(pageSize);

    // Act
    await user.click(loadOlderButton());

    // Assert
    await waitFor(() => expect(shownTitles()).toEqual(titlesNewestFirst(history.posts)));
    expect(screen.queryByText(/Couldn't load older posts/)).not.toBeInTheDocument();
    expect(api.getPostsPage.mock.calls[1]).toEqual(api.getPostsPage.mock.calls[0]);
  });

  it('when a post on an older page read later changes, then it updates live', async () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const { stream, user } = renderApp(createFakeApi(history));
    stream.sendSnapshot(history.newestPage());
    await user.click(loadOlderButton());
    const oldest = history.posts[0]!;
    const article = await screen.findByRole('article', { name: oldest.title });

    // Act
    stream.sendPost(history.update(oldest.id, () => ({ comments: [aComment({ content: 'Late but live' })] })));

    // Assert
    expect(within(article).getByRole('listitem')).toHaveTextContent('Late but live');
  });

  it('when another tab creates a post while older pages are shown, then it goes on top', async () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const { stream, user } = renderApp(createFakeApi(history));
    stream.sendSnapshot(history.newestPage());
    await user.click(loadOlderButton());
    await waitFor(() => expect(shownTitles()).toHaveLength(history.posts.length));

    // Act
    const created = history.add({ title: 'Just published elsewhere' });
    stream.sendPost(created);

    // Assert
    expect(shownTitles()).toEqual(titlesNewestFirst(history.posts));
  });

  it('when a post not loaded yet changes, then the screen ignores it, and its page shows the change once loaded', async () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const { stream, user } = renderApp(createFakeApi(history));
    stream.sendSnapshot(history.newestPage());
    const shownBefore = shownTitles();
    const oldest = history.posts[0]!;

    // Act
    stream.sendPost(history.update(oldest.id, () => ({ comments: [aComment({ content: 'Said while unloaded' })] })));

    // Assert
    expect(shownTitles()).toEqual(shownBefore);

    // Act
    await user.click(loadOlderButton());

    // Assert
    const article = await screen.findByRole('article', { name: oldest.title });
    expect(within(article).getByRole('listitem')).toHaveTextContent('Said while unloaded');
    expect(shownTitles()).toEqual(titlesNewestFirst(history.posts));
  });

  it('when a post is created here and another tab publishes first, then the one created here stays on top until the stream reports it', async () => {
    // Arrange
    const history = createFakeHistory(pageSize + 3);
    const api = createFakeApi(history);
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(history.newestPage());
    await user.type(screen.getByRole('textbox', { name: 'Post title' }), 'Mine{Enter}');
    await screen.findByRole('article', { name: 'Mine' });
    const mine = (await api.createPost.mock.results[0]?.value) as { id: string; title: string };
    const theirs = history.add({ title: 'Theirs' });
    const mineOnServer = history.add(mine);

    // Act
    stream.sendPost(theirs);

    // Assert
    expect(shownTitles().slice(0, 2)).toEqual(['Mine', 'Theirs']);

    // Act
    stream.sendPost(mineOnServer);

    // Assert
    expect(shownTitles().slice(0, 2)).toEqual(['Mine', 'Theirs']);
    expect(shownTitles().filter((title) => title === 'Mine')).toHaveLength(1);
  });
});

describe('App: older posts across a reconnect', () => {
  /** Two pages on screen (the newest and one older), then the live stream drops. */
  async function showTwoPagesThenLoseTheStream() {
    const history = createFakeHistory(pageSize * 2 + 3);
    const api = createFakeApi(history);
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(history.newestPage());
    await user.click(loadOlderButton());
    await waitFor(() => expect(shownTitles()).toHaveLength(pageSize * 2));
    const shownBefore = shownTitles();
    stream.fail();
    return { history, api, stream, user, shownBefore };
  }

  it('when the stream reconnects after older pages were read, then they stay where they were and are read again, showing what was missed', async () => {
    // Arrange
    const { history, api, stream, user, shownBefore } = await showTwoPagesThenLoseTheStream();
    const oldestShown = history.posts.at(-pageSize * 2)!;
    history.update(oldestShown.id, () => ({ comments: [aComment({ content: 'Said during the outage' })] }));
    const createdDuringOutage = history.add({ title: 'Published during the outage' });
    await user.click(screen.getByRole('button', { name: 'Retry' }));

    // Act
    const snapshot = history.newestPage();
    stream.sendSnapshot(snapshot);

    // Assert
    const article = articleTitled(oldestShown.title);
    expect(await within(article).findByText('Said during the outage')).toBeInTheDocument();
    expect(shownTitles()).toEqual([createdDuringOutage.title, ...shownBefore]);
    expect(api.getPostsPage).toHaveBeenLastCalledWith({ before: snapshot.nextCursor, limit: pageSize + 1 });
    expect(loadOlderButton()).toBeEnabled();
  });

  it('when reading the older pages again fails, then they stay on screen with the reason, and pressing the button retries', async () => {
    // Arrange
    const { history, api, stream, user, shownBefore } = await showTwoPagesThenLoseTheStream();
    await user.click(screen.getByRole('button', { name: 'Retry' }));
    const oldestShown = history.posts.at(-pageSize * 2)!;
    history.update(oldestShown.id, () => ({ comments: [aComment({ content: 'Said during the outage' })] }));
    api.getPostsPage.mockRejectedValueOnce(unavailable());

    // Act
    stream.sendSnapshot(history.newestPage());

    // Assert
    expect(await screen.findByText(/Couldn't load older posts/)).toBeInTheDocument();
    expect(shownTitles()).toEqual(shownBefore);

    // Act
    await user.click(loadOlderButton());

    // Assert
    expect(await within(articleTitled(oldestShown.title)).findByText('Said during the outage')).toBeInTheDocument();
    expect(shownTitles()).toEqual(shownBefore);
  });
});
