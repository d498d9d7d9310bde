import { openCommentRows, type CommentRows, type DatabaseSync } from '@blog/common';

/** The comments service's state: the posts that exist, and every comment by post in the order it was made. */
export interface CommentsTable extends CommentRows {
  hasPost(postId: string): boolean;
  addPost(postId: string): void;
}

export function openCommentsTable(db: DatabaseSync): CommentsTable {
  db.exec('CREATE TABLE IF NOT EXISTS posts (id TEXT PRIMARY KEY) STRICT, WITHOUT ROWID');
  const postExists = db.prepare('SELECT 1 FROM posts WHERE id = ?');
  const insertPost = db.prepare('INSERT OR IGNORE INTO posts (id) VALUES (?)');
  return {
    hasPost: (postId) => postExists.get(postId) !== undefined,
    addPost: (postId) => void insertPost.run(postId),
    ...openCommentRows(db),
  };
}
