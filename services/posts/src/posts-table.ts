import { pagesInOrder, type DatabaseSync, type Post } from '@blog/common';

/** The posts service's state: every post, in the order the log created it (`position` is its event's seq). */
export interface PostsTable {
  has(id: string): boolean;
  add(post: Post, position: number): void;
  /** Every post, oldest first, a page at a time (for streaming the classic whole map). */
  pages(pageSize?: number): Generator<Post[]>;
}

export function openPostsTable(db: DatabaseSync): PostsTable {
  db.exec('CREATE TABLE IF NOT EXISTS posts (position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT NOT NULL) STRICT');
  const exists = db.prepare('SELECT 1 FROM posts WHERE id = ?');
  const insert = db.prepare('INSERT INTO posts (position, id, title) VALUES (?, ?, ?)');
  const page = db.prepare('SELECT position, id, title FROM posts WHERE position > ? ORDER BY position LIMIT ?');
  return {
    has: (id) => exists.get(id) !== undefined,
    add: (post, position) => void insert.run(position, post.id, post.title),
    *pages(pageSize = 500) {
      type Row = Post & { position: number };
      for (const rows of pagesInOrder((after) => page.all(after, pageSize) as unknown as Row[], (row) => row.position)) {
        yield rows.map(({ id, title }) => ({ id, title }));
      }
    },
  };
}
