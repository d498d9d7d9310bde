import type { CommentStatus, CommentView } from './contract.js';
import type { DatabaseSync } from './sqlite.js';

/**
 * Comments by post, in the order they were made, with their status: the table that comments and
 * query both keep. A comment may be stored before its post exists (the log can say so in that order).
 */
export interface CommentRows {
  comment(id: string): CommentView | undefined;
  addComment(postId: string, comment: CommentView): void;
  setStatus(id: string, status: CommentStatus): void;
  commentsOf(postId: string): CommentView[];
}

export function openCommentRows(db: DatabaseSync): CommentRows {
  db.exec(`
    CREATE TABLE IF NOT EXISTS comments (
      position INTEGER PRIMARY KEY,
      id TEXT NOT NULL UNIQUE,
      post_id TEXT NOT NULL,
      content TEXT NOT NULL,
      status TEXT NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS comments_by_post ON comments (post_id, position);
  `);
  const byId = db.prepare('SELECT id, content, status FROM comments WHERE id = ?');
  const insert = db.prepare('INSERT INTO comments (id, post_id, content, status) VALUES (?, ?, ?, ?)');
  const updateStatus = db.prepare('UPDATE comments SET status = ? WHERE id = ?');
  const ofPost = db.prepare('SELECT id, content, status FROM comments WHERE post_id = ? ORDER BY position');
  return {
    comment: (id) => byId.get(id) as CommentView | undefined,
    addComment: (postId, { id, content, status }) => void insert.run(id, postId, content, status),
    setStatus: (id, status) => void updateStatus.run(status, id),
    commentsOf: (postId) => ofPost.all(postId) as unknown as CommentView[],
  };
}
