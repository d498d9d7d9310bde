import {
  isStatusAdvance,
  postsPageLimits,
  type CommentView,
  type LiveComment,
  type LivePost,
  type Post,
  type PostView,
  type PostsPage,
} from '@blog/common/contract';
import { compareCursors, pageSize } from './paging';

/*
 * The page learns about the same posts from four sources that race each other: the stream's
 * snapshot (the newest page), the stream's `post` events, the older pages fetched on demand, and
 * the answers to this tab's own POSTs. None of them is guaranteed to be the newest (the comments
 * service answers before the query service has caught up; a page can be read just before a comment
 * its post then gets; a reconnect's snapshot can predate a comment we just created). Because the
 * blog never deletes anything and a status only moves forward, every source can be merged the same
 * way: comments are only ever added, and a comment's status only ever advances. Then the order in
 * which answers arrive no longer matters.
 */

/** The status to show when one source says `shown` and another says `incoming`. */
function laterStatus(shown: CommentView['status'], incoming: CommentView['status']): CommentView['status'] {
  return isStatusAdvance(shown, incoming) ? incoming : shown;
}

/** Comments in the incoming order, then any the incoming list does not know about yet. */
export function mergeComments(shown: readonly CommentView[], incoming: readonly CommentView[]): CommentView[] {
  const shownById = new Map(shown.map((comment) => [comment.id, comment]));
  const merged = incoming.map((comment) => {
    const known = shownById.get(comment.id);
    return known ? { ...comment, status: laterStatus(known.status, comment.status) } : comment;
  });
  const incomingIds = new Set(incoming.map((comment) => comment.id));
  return [...merged, ...shown.filter((comment) => !incomingIds.has(comment.id))];
}

/** One comment's news merged into the comments shown: a new one goes last (they are listed in the order they were made), a known one only advances. */
export function mergeComment(shown: readonly CommentView[], incoming: CommentView): CommentView[] {
  const index = shown.findIndex((comment) => comment.id === incoming.id);
  if (index < 0) return [...shown, incoming];
  const known = shown[index]!;
  return shown.with(index, { ...known, status: laterStatus(known.status, incoming.status) });
}

export function mergePost(shown: PostView | undefined, incoming: PostView): PostView {
  if (!shown) return incoming;
  return { ...incoming, comments: mergeComments(shown.comments, incoming.comments) };
}

/**
 * A post shown above every page: announced by the stream after the newest page was read, or
 * created in this tab (no cursor until the stream's frame for it arrives).
 */
export interface FreshPost {
  post: PostView;
  cursor: string | null;
}

/** One request for the page below the ones shown; `id` tells its answer from a replaced request's. */
export interface PageRequest {
  id: number;
  before: string;
  limit: number;
}

export type OlderPagesState =
  | { status: 'idle' }
  /**
   * `held` and `heldComments`: stream frames for posts the awaited page may bring, merged into it
   * when it arrives.
   */
  | { status: 'loading'; request: PageRequest; held: PostView[]; heldComments: LiveComment[] }
  | { status: 'failed'; message: string };

/** Every post on screen, newest first: `fresh`, then `pages`, then `stale`. */
export interface PostsFeed {
  /** Newest first: posts without a cursor (created here, not yet reported) on top, then by cursor. */
  fresh: FreshPost[];
  /** The newest page, from this connection's snapshot, and the older pages read after it: no gaps. */
  pages: PostView[];
  /**
   * After a reconnect: the posts read before it that the new snapshot does not cover, shown below
   * `pages` until they are read again. `until` is where they reach (null: the oldest post).
   */
  stale: { posts: PostView[]; until: string | null } | null;
  /** `before` for the page below `pages`; null once `pages` reaches the oldest post. */
  nextCursor: string | null;
  older: OlderPagesState;
}

export const emptyFeed: PostsFeed = { fresh: [], pages: [], stale: null, nextCursor: null, older: { status: 'idle' } };

export function shownPosts(feed: PostsFeed): PostView[] {
  return [...feed.fresh.map((entry) => entry.post), ...feed.pages, ...(feed.stale?.posts ?? [])];
}

function byNewestFirst(a: FreshPost, b: FreshPost): number {
  if (a.cursor === null || b.cursor === null) return (a.cursor === null ? 0 : 1) - (b.cursor === null ? 0 : 1);
  return compareCursors(b.cursor, a.cursor);
}

/** The feed with post `id` changed by `change` wherever it is shown; undefined when it is not on screen. */
function updateShown(feed: PostsFeed, id: string, change: (post: PostView) => PostView): PostsFeed | undefined {
  const freshIndex = feed.fresh.findIndex((entry) => entry.post.id === id);
  if (freshIndex >= 0) {
    const entry = feed.fresh[freshIndex]!;
    return { ...feed, fresh: feed.fresh.with(freshIndex, { ...entry, post: change(entry.post) }) };
  }
  const pageIndex = feed.pages.findIndex((post) => post.id === id);
  if (pageIndex >= 0) return { ...feed, pages: feed.pages.with(pageIndex, change(feed.pages[pageIndex]!)) };
  const staleIndex = feed.stale?.posts.findIndex((post) => post.id === id) ?? -1;
  if (feed.stale && staleIndex >= 0) {
    return { ...feed, stale: { ...feed.stale, posts: feed.stale.posts.with(staleIndex, change(feed.stale.posts[staleIndex]!)) } };
  }
  return undefined;
}

/**
 * A `post` stream event. A post on screen takes the incoming title and comments, merged as above.
 * A post not on screen is new when it does not sort below `nextCursor`: page items carry no cursor,
 * so the page boundary is what the feed can compare with, and since `pages` runs without gaps from
 * the newest page down to it, a post at or above it that is not shown was created after the newest
 * page was read, so it is newer than everything on screen. Below it the post belongs to a page not
 * loaded yet and is left to that page, unless the page is on its way: it may have been read before
 * this change, so the frame is held and merged into it.
 */
export function applyLivePost(feed: PostsFeed, live: LivePost): PostsFeed {
  const { cursor, ...post } = live;
  const freshIndex = feed.fresh.findIndex((entry) => entry.post.id === post.id);
  if (freshIndex >= 0) {
    const fresh = feed.fresh.with(freshIndex, { post: mergePost(feed.fresh[freshIndex]!.post, post), cursor });
    return { ...feed, fresh: fresh.sort(byNewestFirst) };
  }
  const updated = updateShown(feed, post.id, (shown) => mergePost(shown, post));
  if (updated) return updated;
  if (feed.nextCursor === null || compareCursors(cursor, feed.nextCursor) >= 0) {
    return { ...feed, fresh: [{ post, cursor }, ...feed.fresh].sort(byNewestFirst) };
  }
  if (feed.older.status === 'loading') {
    const held = feed.older.held.filter((shown) => shown.id !== post.id);
    const earlier = feed.older.held.find((shown) => shown.id === post.id);
    return { ...feed, older: { ...feed.older, held: [...held, mergePost(earlier, post)] } };
  }
  return feed;
}

/**
 * A `comment` stream event: one comment of post `postId`, new or with its status advanced, merged
 * into the post wherever it is shown (a post created here also learns its cursor). A post not on
 * screen is left alone: a new post's own frame comes before any of its comments, and a post below
 * the pages read brings its comments with its page, unless that page is on its way: it may have
 * been read before this change, so the change is held and merged into it.
 */
export function applyLiveComment(feed: PostsFeed, change: LiveComment): PostsFeed {
  const { postId, cursor, comment } = change;
  const withComment = (post: PostView): PostView => ({ ...post, comments: mergeComment(post.comments, comment) });
  const freshIndex = feed.fresh.findIndex((entry) => entry.post.id === postId);
  if (freshIndex >= 0) {
    const fresh = feed.fresh.with(freshIndex, { post: withComment(feed.fresh[freshIndex]!.post), cursor });
    return { ...feed, fresh: fresh.sort(byNewestFirst) };
  }
  const updated = updateShown(feed, postId, withComment);
  if (updated) return updated;
  const belowPages = feed.nextCursor !== null && compareCursors(cursor, feed.nextCursor) < 0;
  if (belowPages && feed.older.status === 'loading') {
    return { ...feed, older: { ...feed.older, heldComments: [...feed.older.heldComments, change] } };
  }
  return feed;
}

/**
 * A `snapshot` stream event, first or after a reconnect: it becomes the newest page. A snapshot can
 * predate what this tab created or saw, so comments keep the status shown and the posts on top that
 * it lacks stay there. Posts read before that the snapshot does not cover become `stale`: the broken
 * connection may have missed changes to them, so they are read again (see `nextPageRequest`).
 * Refreshing rather than dropping them keeps the reader where they were in a long list across a
 * network blip or a server restart, instead of sending them back to the first page.
 */
export function applySnapshot(feed: PostsFeed, page: PostsPage): PostsFeed {
  const shownById = new Map(shownPosts(feed).map((post) => [post.id, post]));
  const inPage = new Set(page.posts.map((post) => post.id));
  const belowPage = (cursor: string | null) =>
    cursor !== null && page.nextCursor !== null && compareCursors(cursor, page.nextCursor) < 0;

  const freshNotInPage = feed.fresh.filter((entry) => !inPage.has(entry.post.id));
  const below = [
    ...freshNotInPage.filter((entry) => belowPage(entry.cursor)).map((entry) => entry.post),
    ...feed.pages,
    ...(feed.stale?.posts ?? []),
  ].filter((post) => !inPage.has(post.id));
  const until = feed.stale ? feed.stale.until : feed.nextCursor;
  // When the snapshot reaches as far down as the screen did, it is the whole truth for that range.
  const coversScreen = page.nextCursor === null || (until !== null && compareCursors(page.nextCursor, until) <= 0);
  const stale = below.length > 0 && !coversScreen ? { posts: below, until } : null;

  // A page on its way is still wanted if it continues the new snapshot; any other answer would leave a gap.
  const keepsLoading = feed.older.status === 'loading' && stale === null && feed.older.request.before === page.nextCursor;
  return {
    fresh: freshNotInPage.filter((entry) => !belowPage(entry.cursor)),
    pages: page.posts.map((post) => mergePost(shownById.get(post.id), post)),
    stale,
    nextCursor: page.nextCursor,
    older: keepsLoading ? feed.older : { status: 'idle' },
  };
}

/** What to read next below the pages shown, if anything; `id` names the request. */
export function nextPageRequest(feed: PostsFeed, id: number): PageRequest | undefined {
  if (feed.nextCursor === null || feed.older.status === 'loading') return undefined;
  // A refresh asks for as many posts as it has to replace: one request, unless posts were created
  // in the meantime beyond what the snapshot holds.
  const limit = feed.stale ? Math.min(Math.max(feed.stale.posts.length, 1), postsPageLimits.maxLimit) : pageSize;
  return { id, before: feed.nextCursor, limit };
}

export function startLoadingOlder(feed: PostsFeed, request: PageRequest): PostsFeed {
  if (feed.older.status === 'loading' || feed.nextCursor !== request.before) return feed;
  return { ...feed, older: { status: 'loading', request, held: [], heldComments: [] } };
}

function isAwaited(feed: PostsFeed, request: PageRequest): boolean {
  return feed.older.status === 'loading' && feed.older.request.id === request.id;
}

/** The answer to `request`: its posts go below `pages`, replacing their stale copies. */
export function applyOlderPage(feed: PostsFeed, request: PageRequest, page: PostsPage): PostsFeed {
  if (feed.older.status !== 'loading' || !isAwaited(feed, request)) return feed;
  const heldById = new Map(feed.older.held.map((post) => [post.id, post]));
  const staleById = new Map(feed.stale?.posts.map((post) => [post.id, post]));

  let next: PostsFeed = { ...feed, stale: null, older: { status: 'idle' } };
  const appended: PostView[] = [];
  for (const pagePost of page.posts) {
    const read = mergePost(staleById.get(pagePost.id), pagePost);
    const held = heldById.get(pagePost.id);
    let post = held ? mergePost(read, held) : read;
    for (const change of feed.older.heldComments) {
      if (change.postId === post.id) post = { ...post, comments: mergeComment(post.comments, change.comment) };
    }
    // A page is not expected to repeat a post already above it; if it does, it stays where it is.
    const repeated = !staleById.has(post.id) && updateShown(next, post.id, (shown) => mergePost(shown, post));
    if (repeated) next = repeated;
    else appended.push(post);
  }

  let stale: PostsFeed['stale'] = null;
  if (feed.stale) {
    const { until } = feed.stale;
    const inPage = new Set(page.posts.map((post) => post.id));
    const posts = feed.stale.posts.filter((post) => !inPage.has(post.id));
    // Once the pages reach as far down as the stale posts did, they are the whole truth for that range.
    const reached = page.nextCursor === null || (until !== null && compareCursors(page.nextCursor, until) <= 0);
    if (posts.length > 0 && !reached) stale = { posts, until };
  }
  return { ...next, pages: [...next.pages, ...appended], stale, nextCursor: page.nextCursor };
}

export function failLoadingOlder(feed: PostsFeed, request: PageRequest, message: string): PostsFeed {
  if (!isAwaited(feed, request)) return feed;
  return { ...feed, older: { status: 'failed', message } };
}

/** The 201 of `POST /posts/create`: show the new post on top before the stream reports it. */
export function applyCreatedPost(feed: PostsFeed, post: Post): PostsFeed {
  if (shownPosts(feed).some((shown) => shown.id === post.id)) return feed;
  return { ...feed, fresh: [{ post: { id: post.id, title: post.title, comments: [] }, cursor: null }, ...feed.fresh] };
}

/**
 * The 201 of `POST /posts/:id/comments`: the whole comment list, the new one `pending`. The stream
 * may already have delivered a verdict for it, which must not be taken back.
 */
export function applyCreatedComments(feed: PostsFeed, postId: string, comments: readonly CommentView[]): PostsFeed {
  // Only reachable from a post on screen; if it is gone, the stream's next snapshot has the truth.
  return updateShown(feed, postId, (post) => ({ ...post, comments: mergeComments(post.comments, comments) })) ?? feed;
}

const FIRST_RETRY_DELAY_MS = 1_000;
const MAX_RETRY_DELAY_MS = 10_000;

/**
 * How long to wait before reconnecting after `failures` failed attempts in a row: 1 s, 2 s, 4 s,
 * 8 s, 10 s, 10 s…, or longer when the server asked for it (`retryAfterMs`, a full server's 503):
 * coming back sooner would only be refused again and add to its load.
 */
export function retryDelayMs(failures: number, retryAfterMs = 0): number {
  return Math.max(Math.min(FIRST_RETRY_DELAY_MS * 2 ** failures, MAX_RETRY_DELAY_MS), retryAfterMs);
}
