import type { CommentStatus, CommentView, DatabaseSync } from '@blog/common';

/** The comments service's state: the posts that exist, and every comment by post in the order it was made. */
export interface CommentsTable {
  hasPost(postId: string): boolean;
  addPost(postId: string): void;
  comment(id: string): CommentView | undefined;
  addComment(postId: string, comment: CommentView): void;
  setStatus(id: string, status: CommentStatus): void;
  commentsOf(postId: string): CommentView[];
}

export function openCommentsTable(db: DatabaseSync): CommentsTable {
  db.exec(`
    CREATE TABLE IF NOT EXISTS posts (id TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS comments (
      position INTEGER PRIMARY KEY,
      id TEXT NOT NULL UNIQUE,
      post_id TEXT NOT NULL,
      content TEXT NOT NULL,
      status TEXT NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS comments_by_post ON comments (post_id, position);
  `);
  const postExists = db.prepare('SELECT 1 FROM posts WHERE id = ?');
  const insertPost = db.prepare('INSERT OR IGNORE INTO posts (id) VALUES (?)');
  const byId = db.prepare('SELECT id, content, status FROM comments WHERE id = ?');
  const insertComment = db.prepare('INSERT INTO comments (id, post_id, content, status) VALUES (?, ?, ?, ?)');
  const updateStatus = db.prepare('UPDATE comments SET status = ? WHERE id = ?');
  const ofPost = db.prepare('SELECT id, content, status FROM comments WHERE post_id = ? ORDER BY position');
  return {
    hasPost: (postId) => postExists.get(postId) !== undefined,
    addPost: (postId) => void insertPost.run(postId),
    comment: (id) => byId.get(id) as CommentView | undefined,
    addComment: (postId, { id, content, status }) => void insertComment.run(id, postId, content, status),
    setStatus: (id, status) => void updateStatus.run(status, id),
    commentsOf: (postId) => ofPost.all(postId) as unknown as CommentView[],
  };
}
