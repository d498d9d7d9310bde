import { isStatusAdvance, type EventEnvelope, type ProjectionSpec } from '@blog/common';
import { openViewTables, type ViewTables } from '../view-tables.js';

/** The read model behind GET /posts, built only from events. */
export type QueryView = ViewTables;

/**
 * Folds one event into the view. Duplicates change nothing, a status never moves back to pending,
 * and events that arrive before the ones they refer to still end up in the right place.
 */
export function applyToQueryView(view: QueryView, event: EventEnvelope): boolean {
  switch (event.type) {
    case 'PostCreated': {
      const { id, title } = event.data;
      if (view.hasPost(id)) return false;
      view.addPost({ id, title }, event.seq);
      return true;
    }
    case 'CommentCreated':
    case 'CommentModerated':
    case 'CommentUpdated': {
      // Applying the verdict straight from moderation saves a hop; CommentUpdated then changes nothing.
      const { id, postId, content, status } = event.data;
      const existing = view.comment(id);
      if (existing) {
        if (!isStatusAdvance(existing.status, status)) return false;
        view.setStatus(id, status);
        return true;
      }
      view.addComment(postId, { id, content, status });
      return true;
    }
  }
}

export const queryProjection: ProjectionSpec<QueryView> = {
  open: openViewTables,
  apply: applyToQueryView,
};
