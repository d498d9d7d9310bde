import { derivedEventId, type EventEnvelope, type ProjectionSpec, type PublishRequest } from '@blog/common';

export type Verdict = 'approved' | 'rejected';

/** Rejected when the content contains any blocked word, ignoring case ("Orange juice" too). */
export function moderate(content: string, blockedWords: readonly string[]): Verdict {
  const text = content.toLowerCase();
  return blockedWords.some((word) => text.includes(word.toLowerCase())) ? 'rejected' : 'approved';
}

/** What moderation has decided so far; kept for the record and /metrics, never to decide again. */
export interface ModerationState {
  approved: number;
  rejected: number;
}

export function createModerationProjection(blockedWords: readonly string[]): ProjectionSpec<ModerationState> {
  const verdictFor = (event: EventEnvelope): PublishRequest[] => {
    if (event.type !== 'CommentCreated') return [];
    const { id, postId, content } = event.data;
    // The id comes from the comment's event, so a redelivery cannot produce a second verdict.
    return [{ id: derivedEventId(event.id, 'comment-moderated'), type: 'CommentModerated', data: { id, postId, content, status: moderate(content, blockedWords) } }];
  };
  return {
    initialState: () => ({ approved: 0, rejected: 0 }),
    react: (_state, event) => verdictFor(event),
    apply: (state, event) => {
      if (event.type !== 'CommentCreated') return false;
      state[moderate(event.data.content, blockedWords)] += 1;
      return true;
    },
    toSnapshot: (state) => state,
    fromSnapshot: (snapshot) => ({ ...(snapshot as ModerationState) }),
  };
}
