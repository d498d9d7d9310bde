import { openCommentRows, pagesInOrder, type CommentRows, type CommentView, type DatabaseSync, type LivePost, type PostsPage, type PostView } from '@blog/common';

/**
 * The read model in two tables. A post's `position` is the seq of its PostCreated event, so pages
 * are newest first by position and the classic map keeps the order posts were created in. A
 * comment may be stored before its post (it is found by post id once the post arrives).
 */
export interface ViewTables extends CommentRows {
  hasPost(id: string): boolean;
  addPost(post: { id: string; title: string }, position: number): void;
  /** The post with this id, as a live frame shows it. */
  livePost(postId: string): LivePost | undefined;
  /** Where the post sorts among pages (see `PostsPage`); undefined while it is not known yet. */
  postCursor(postId: string): string | undefined;
  /** Newest first, up to `limit`, older than the `before` position when given. */
  page(limit: number, before?: number): PostsPage;
  /** Every post with its comments, oldest first, a page at a time (the classic whole map). */
  pages(pageSize?: number): Generator<PostView[]>;
}

interface PostRow {
  position: number;
  id: string;
  title: string;
}
interface CommentRow extends CommentView {
  post_id: string;
}

export function openViewTables(db: DatabaseSync): ViewTables {
  db.exec('CREATE TABLE IF NOT EXISTS posts (position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT NOT NULL) STRICT');
  const comments = openCommentRows(db);
  const postExists = db.prepare('SELECT 1 FROM posts WHERE id = ?');
  const insertPost = db.prepare('INSERT INTO posts (position, id, title) VALUES (?, ?, ?)');
  const postById = db.prepare('SELECT position, id, title FROM posts WHERE id = ?');
  const newest = db.prepare('SELECT position, id, title FROM posts WHERE position < ? ORDER BY position DESC LIMIT ?');
  const oldestAfter = db.prepare('SELECT position, id, title FROM posts WHERE position > ? ORDER BY position LIMIT ?');
  const commentsOfRange = db.prepare(
    'SELECT post_id, id, content, status FROM comments WHERE post_id IN (SELECT id FROM posts WHERE position BETWEEN ? AND ?) ORDER BY position',
  );

  /** The posts of one page with their comments (one query for all of them). */
  const withComments = (rows: PostRow[]): PostView[] => {
    if (rows.length === 0) return [];
    const positions = rows.map((row) => row.position);
    const byPost = new Map<string, CommentView[]>(rows.map((row) => [row.id, []]));
    for (const { post_id, id, content, status } of commentsOfRange.all(Math.min(...positions), Math.max(...positions)) as unknown as CommentRow[]) {
      byPost.get(post_id)?.push({ id, content, status });
    }
    return rows.map(({ id, title }) => ({ id, title, comments: byPost.get(id)! }));
  };

  return {
    hasPost: (id) => postExists.get(id) !== undefined,
    addPost: ({ id, title }, position) => void insertPost.run(position, id, title),
    ...comments,
    livePost(postId) {
      const row = postById.get(postId) as PostRow | undefined;
      if (!row) return undefined;
      return { id: row.id, title: row.title, comments: comments.commentsOf(row.id), cursor: String(row.position) };
    },
    postCursor(postId) {
      const row = postById.get(postId) as PostRow | undefined;
      return row && String(row.position);
    },
    page(limit, before = Number.MAX_SAFE_INTEGER) {
      // One more than asked: whether it exists says if there is a next page.
      const rows = newest.all(before, limit + 1) as unknown as PostRow[];
      const more = rows.length > limit;
      const shown = rows.slice(0, limit);
      return { posts: withComments(shown), nextCursor: more ? String(shown.at(-1)!.position) : null };
    },
    *pages(pageSize = 500) {
      for (const rows of pagesInOrder((after) => oldestAfter.all(after, pageSize) as unknown as PostRow[], (row) => row.position)) yield withComments(rows);
    },
  };
}
