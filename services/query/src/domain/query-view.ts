import { isStatusAdvance, type CommentView, type EventEnvelope, type PostView, type ProjectionSpec } from '@blog/common';

/** The read model behind GET /posts, built only from events. */
export interface QueryView {
  posts: Map<string, PostView>;
  comments: Map<string, CommentView>;
  /** Comments whose post has not been seen yet (never from our ordered log, but never lost either). */
  waitingForPost: Map<string, CommentView[]>;
}

export function createQueryView(): QueryView {
  return { posts: new Map(), comments: new Map(), waitingForPost: new Map() };
}

/**
 * Folds one event into the view. Duplicates change nothing, a status never moves back to pending,
 * and events that arrive before the ones they refer to still end up in the right place.
 */
export function applyToQueryView(view: QueryView, event: EventEnvelope): boolean {
  switch (event.type) {
    case 'PostCreated': {
      const { id, title } = event.data;
      if (view.posts.has(id)) return false;
      view.posts.set(id, { id, title, comments: view.waitingForPost.get(id) ?? [] });
      view.waitingForPost.delete(id);
      return true;
    }
    case 'CommentCreated':
    case 'CommentModerated':
    case 'CommentUpdated': {
      // Applying the verdict straight from moderation saves a hop; CommentUpdated then changes nothing.
      const { id, postId, content, status } = event.data;
      const existing = view.comments.get(id);
      if (existing) {
        if (!isStatusAdvance(existing.status, status)) return false;
        existing.status = status;
        return true;
      }
      addComment(view, postId, { id, content, status });
      return true;
    }
  }
}

function addComment(view: QueryView, postId: string, comment: CommentView): void {
  view.comments.set(comment.id, comment);
  const post = view.posts.get(postId);
  if (post) {
    post.comments.push(comment);
    return;
  }
  const waiting = view.waitingForPost.get(postId);
  if (waiting) waiting.push(comment);
  else view.waitingForPost.set(postId, [comment]);
}

interface QueryViewSnapshot {
  posts: PostView[];
  waitingForPost: Array<[postId: string, comments: CommentView[]]>;
}

export const queryProjection: ProjectionSpec<QueryView> = {
  initialState: createQueryView,
  apply: applyToQueryView,
  toSnapshot: (view): QueryViewSnapshot => ({ posts: [...view.posts.values()], waitingForPost: [...view.waitingForPost] }),
  fromSnapshot: (snapshot) => {
    const { posts, waitingForPost } = snapshot as QueryViewSnapshot;
    const view = createQueryView();
    for (const post of posts) {
      view.posts.set(post.id, post);
      for (const comment of post.comments) view.comments.set(comment.id, comment);
    }
    for (const [postId, comments] of waitingForPost) {
      view.waitingForPost.set(postId, comments);
      for (const comment of comments) view.comments.set(comment.id, comment);
    }
    return view;
  },
};
