import type { DatabaseSync } from '@blog/common';
import type { Verdict } from './domain/moderation.js';

export interface VerdictsTable {
  get(commentId: string): Verdict | undefined;
  set(commentId: string, verdict: Verdict): void;
}

export function openVerdictsTable(db: DatabaseSync): VerdictsTable {
  db.exec('CREATE TABLE IF NOT EXISTS verdicts (comment_id TEXT PRIMARY KEY, verdict TEXT NOT NULL) STRICT, WITHOUT ROWID');
  const select = db.prepare('SELECT verdict FROM verdicts WHERE comment_id = ?');
  const upsert = db.prepare('INSERT INTO verdicts (comment_id, verdict) VALUES (?, ?) ON CONFLICT (comment_id) DO UPDATE SET verdict = excluded.verdict');
  return {
    get: (commentId) => (select.get(commentId) as { verdict: Verdict } | undefined)?.verdict,
    set: (commentId, verdict) => void upsert.run(commentId, verdict),
  };
}
