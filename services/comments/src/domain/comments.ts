import { derivedEventId, isStatusAdvance, newId, type CommentView, type EventEnvelope, type EventOf, type ProjectionSpec, type PublishRequest } from '@blog/common';
import { openCommentsTable, type CommentsTable } from '../comments-table.js';

export type Comment = CommentView;
export type CommentsState = CommentsTable;

export function commentCreated(postId: string, content: string): EventOf<'CommentCreated'> {
  return { type: 'CommentCreated', data: { id: newId(), postId, content, status: 'pending' } };
}

export function commentsOf(state: CommentsState, postId: string): Comment[] {
  return state.commentsOf(postId);
}

/**
 * Moderation's verdict becomes the comment's status, and comments (its owner) announces it with
 * CommentUpdated, exactly once per comment: a second verdict for a decided comment changes nothing.
 */
export function reactToCommentEvent(state: CommentsState, event: EventEnvelope): PublishRequest[] {
  if (event.type !== 'CommentModerated') return [];
  const current = state.comment(event.data.id);
  if (current && !isStatusAdvance(current.status, event.data.status)) return [];
  return [{ id: derivedEventId(event.id, 'comment-updated'), type: 'CommentUpdated', data: { ...event.data } }];
}

export function applyCommentEvent(state: CommentsState, event: EventEnvelope): boolean {
  switch (event.type) {
    case 'PostCreated': {
      if (state.hasPost(event.data.id)) return false;
      state.addPost(event.data.id);
      return true;
    }
    case 'CommentCreated':
    case 'CommentModerated':
    case 'CommentUpdated': {
      const { id, postId, content, status } = event.data;
      const existing = state.comment(id);
      if (existing) {
        if (!isStatusAdvance(existing.status, status)) return false;
        state.setStatus(id, status);
        return true;
      }
      // A verdict before the comment itself cannot come from our bus, but it carries the whole comment.
      state.addComment(postId, { id, content, status });
      return true;
    }
  }
}

export const commentsProjection: ProjectionSpec<CommentsState> = {
  open: openCommentsTable,
  apply: applyCommentEvent,
  react: reactToCommentEvent,
};
