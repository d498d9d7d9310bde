import { derivedEventId, type EventEnvelope, type ProjectionSpec, type PublishRequest } from '@blog/common';
import { openVerdictsTable, type VerdictsTable } from '../verdicts-table.js';

export type Verdict = 'approved' | 'rejected';

/** Rejected when the content contains any blocked word, ignoring case ("Orange juice" too). */
export function moderate(content: string, blockedWords: readonly string[]): Verdict {
  const text = content.toLowerCase();
  return blockedWords.some((word) => text.includes(word.toLowerCase())) ? 'rejected' : 'approved';
}

/** Every verdict, by comment id: each comment is decided once, and what the log says stands. */
export type ModerationState = VerdictsTable;

export function createModerationProjection(blockedWords: readonly string[]): ProjectionSpec<ModerationState> {
  return {
    open: openVerdictsTable,
    // The id comes from the comment's event, so a redelivery cannot produce a second verdict.
    react: (verdicts, event): PublishRequest[] => {
      if (event.type !== 'CommentCreated' || verdicts.get(event.data.id) !== undefined) return [];
      const { id, postId, content } = event.data;
      return [{ id: derivedEventId(event.id, 'comment-moderated'), type: 'CommentModerated', data: { id, postId, content, status: moderate(content, blockedWords) } }];
    },
    apply: (verdicts, event: EventEnvelope) => {
      if (event.type === 'CommentCreated') {
        if (verdicts.get(event.data.id) !== undefined) return false;
        verdicts.set(event.data.id, moderate(event.data.content, blockedWords));
        return true;
      }
      // The verdict in the log is the one everybody saw: it wins over what the rules say today.
      if (event.type === 'CommentModerated' && verdicts.get(event.data.id) !== event.data.status) {
        verdicts.set(event.data.id, event.data.status);
        return true;
      }
      return false;
    },
  };
}
