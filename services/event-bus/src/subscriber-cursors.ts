import { inTransaction, type DatabaseSync, type StatementSync } from '@blog/common';

/**
 * How far each subscriber has acknowledged, kept in the `cursors` table of the bus's database and
 * saved a few times a second rather than on every ack: after a crash a subscriber may be sent a
 * few events again, which it ignores. The table belongs to the event log's schema.
 */
export class SubscriberCursors {
  private readonly cursors: Map<string, number>;
  private readonly moved = new Set<string>();
  private readonly upsert: StatementSync;

  constructor(
    private readonly db: DatabaseSync,
    names: readonly string[],
  ) {
    const select = db.prepare('SELECT seq FROM cursors WHERE subscriber = ?');
    this.upsert = db.prepare('INSERT INTO cursors (subscriber, seq) VALUES (?, ?) ON CONFLICT (subscriber) DO UPDATE SET seq = excluded.seq');
    this.cursors = new Map(names.map((name) => [name, (select.get(name) as { seq: number } | undefined)?.seq ?? 0]));
  }

  get(name: string): number {
    return this.cursors.get(name) ?? 0;
  }

  advance(name: string, seq: number): void {
    if (seq > this.get(name)) {
      this.cursors.set(name, seq);
      this.moved.add(name);
    }
  }

  /** Saves the cursors that moved since the last save, in one transaction. */
  save(): Promise<void> {
    return new Promise((resolve) => {
      if (this.moved.size > 0 && this.db.isOpen) {
        inTransaction(this.db, () => {
          for (const name of this.moved) this.upsert.run(name, this.get(name));
        });
        this.moved.clear();
      }
      resolve();
    });
  }
}
