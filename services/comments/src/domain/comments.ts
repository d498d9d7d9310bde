import {
  derivedEventId,
  isStatusAdvance,
  newId,
  type CommentView,
  type EventEnvelope,
  type EventOf,
  type ProjectionSpec,
  type PublishRequest,
} from '@blog/common';

export type Comment = CommentView;

export interface CommentsState {
  /** Posts we know exist: a comment is accepted only for one of these. */
  postIds: Set<string>;
  commentsByPost: Map<string, Comment[]>;
  commentsById: Map<string, Comment>;
}

export function commentCreated(postId: string, content: string): EventOf<'CommentCreated'> {
  return { type: 'CommentCreated', data: { id: newId(), postId, content, status: 'pending' } };
}

export function commentsOf(state: CommentsState, postId: string): Comment[] {
  return state.commentsByPost.get(postId) ?? [];
}

/**
 * Moderation's verdict becomes the comment's status, and comments (its owner) announces it with
 * CommentUpdated, exactly once per comment: a second verdict for a decided comment changes nothing.
 */
export function reactToCommentEvent(state: CommentsState, event: EventEnvelope): PublishRequest[] {
  if (event.type !== 'CommentModerated') return [];
  const current = state.commentsById.get(event.data.id);
  if (current && !isStatusAdvance(current.status, event.data.status)) return [];
  return [{ id: derivedEventId(event.id, 'comment-updated'), type: 'CommentUpdated', data: { ...event.data } }];
}

export function applyCommentEvent(state: CommentsState, event: EventEnvelope): boolean {
  switch (event.type) {
    case 'PostCreated': {
      if (state.postIds.has(event.data.id)) return false;
      state.postIds.add(event.data.id);
      return true;
    }
    case 'CommentCreated':
    case 'CommentModerated':
    case 'CommentUpdated': {
      const { id, postId, content, status } = event.data;
      const existing = state.commentsById.get(id);
      if (existing) {
        if (!isStatusAdvance(existing.status, status)) return false;
        existing.status = status;
        return true;
      }
      // A verdict before the comment itself cannot come from our bus, but it carries the whole comment.
      addComment(state, postId, { id, content, status });
      return true;
    }
  }
}

function addComment(state: CommentsState, postId: string, comment: Comment): void {
  state.commentsById.set(comment.id, comment);
  const list = state.commentsByPost.get(postId);
  if (list) list.push(comment);
  else state.commentsByPost.set(postId, [comment]);
}

interface CommentsSnapshot {
  postIds: string[];
  comments: Array<[postId: string, comments: Comment[]]>;
}

export const commentsProjection: ProjectionSpec<CommentsState> = {
  initialState: () => ({ postIds: new Set(), commentsByPost: new Map(), commentsById: new Map() }),
  apply: applyCommentEvent,
  react: reactToCommentEvent,
  toSnapshot: (state): CommentsSnapshot => ({ postIds: [...state.postIds], comments: [...state.commentsByPost] }),
  fromSnapshot: (snapshot) => {
    const { postIds, comments } = snapshot as CommentsSnapshot;
    const state: CommentsState = { postIds: new Set(postIds), commentsByPost: new Map(), commentsById: new Map() };
    for (const [postId, list] of comments) for (const comment of list) addComment(state, postId, comment);
    return state;
  },
};
