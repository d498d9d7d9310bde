import type { CommentView } from '@blog/common/contract';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiRequestError, type BlogApi } from './api';
import { App } from './App';
import { aComment, aPost, createDeferred, createFakeApi, createFakeStream, viewOf } from './test-fakes';

function renderApp(api: BlogApi = createFakeApi()) {
  const stream = createFakeStream();
  const user = userEvent.setup();
  render(<App api={api} subscribe={stream.subscribe} />);
  return { stream, user };
}

function articleTitled(title: string): HTMLElement {
  return screen.getByRole('article', { name: title });
}

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
    stream.sendSnapshot({});

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
    stream.sendSnapshot(viewOf(older, newer));

    // Assert
    expect(screen.getAllByRole('heading', { level: 2 }).map((heading) => heading.textContent)).toEqual(['Newer post', 'Older post']);
    const comments = within(articleTitled('Older post')).getAllByRole('listitem');
    expect(comments.map((item) => item.textContent)).toEqual(['Approved words', 'This comment is awaiting moderation']);
    expect(within(articleTitled('Newer post')).getByText('No comments yet.')).toBeInTheDocument();
  });
});

describe('App: live updates', () => {
  it('when a post event arrives, then that post is replaced without a reload', () => {
    // Arrange
    const comment = aComment({ status: 'pending', content: 'Hello there' });
    const post = aPost({ title: 'Watched post', comments: [comment] });
    const { stream } = renderApp();
    stream.sendSnapshot(viewOf(post));

    // Act
    stream.sendPost({ ...post, comments: [{ ...comment, status: 'approved' }, aComment({ status: 'rejected' })] });

    // Assert
    const items = within(articleTitled('Watched post')).getAllByRole('listitem');
    expect(items.map((item) => item.textContent)).toEqual(['Hello there', 'This comment has been rejected']);
  });

  it('when another tab creates a post, then it appears', () => {
    // Arrange
    const { stream } = renderApp();
    stream.sendSnapshot({});

    // Act
    stream.sendPost(aPost({ title: 'From another tab' }));

    // Assert
    expect(articleTitled('From another tab')).toBeInTheDocument();
    expect(screen.queryByText(/No posts yet/)).not.toBeInTheDocument();
  });
});

describe('App: creating posts and comments', () => {
  it('when a post is created, then it appears at once, before the stream reports it', async () => {
    // Arrange
    const { stream, user } = renderApp();
    stream.sendSnapshot({});

    // Act
    await user.type(screen.getByRole('textbox', { name: 'Post title' }), 'Brand new{Enter}');

    // Assert
    expect(await screen.findByRole('article', { name: 'Brand new' })).toBeInTheDocument();
    expect(screen.getByRole('textbox', { name: 'Post title' })).toHaveValue('');
  });

  it('when a comment is added, then it appears at once as pending and turns approved when the stream says so', async () => {
    // Arrange
    const api = createFakeApi();
    const post = aPost({ title: 'Commented post' });
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(viewOf(post));
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
    const post = aPost({ title: 'Racy post' });
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(viewOf(post));
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
    const unavailable = new ApiRequestError({ code: 'http_error', status: 502, message: 'The blog is unavailable right now. Try again in a moment.' });
    const api = createFakeApi();
    api.createPost.mockRejectedValue(unavailable);
    const { stream, user } = renderApp(api);
    stream.sendSnapshot(viewOf(aPost({ title: 'Still here' })));

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
    stream.sendSnapshot(viewOf(aPost({ title: 'Kept post' })));

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
    stream.sendSnapshot(viewOf(aPost({ title: 'Back again' })));

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
    stream.sendSnapshot({});

    // Act
    stream.fail();
    act(() => {
      vi.advanceTimersByTime(1_000);
    });

    // Assert
    expect(stream.connectionCount).toBe(4);
  });
});
