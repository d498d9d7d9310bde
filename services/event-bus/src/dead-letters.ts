import { Counter, eventId, PublishRequest, type DatabaseSync, type Logger, type Registry, type StatementSync } from '@blog/common';

/**
 * A message of the JetStream stream that is not an event the bus could have stored (only the bus
 * should publish there, but anyone holding its NATS credentials can): not JSON, not an envelope
 * `{ id, type, data }`, or not a valid event.
 *
 * Invariant: consumers page by seq and apply seq N only after N - 1, so the log stays contiguous.
 * A dead letter keeps its seq and is served in its place as an event of the type `DeadLetter`,
 * which no service knows and every consumer skips (an unknown type is acknowledged and ignored).
 * Its id is not an event id anyone published (the id index never holds it), and the message stays
 * in the stream (which denies deletes and purges), besides the copy kept in the `dead_letters`
 * table of the replica's jetstream-index.db.
 */
export const deadLetterType = 'DeadLetter';

/** Why a message was set aside; the same message gets the same reason on every replica. */
export type DeadLetterReason = 'not JSON' | 'not an event envelope { id, type, data }' | 'invalid event id' | 'not a valid event';

/** What a message of the stream carries: the envelope without `seq` (the stream numbers it). */
export interface StreamEvent {
  id: string;
  type: string;
  data: unknown;
}

export type CheckedMessage = { valid: true; event: StreamEvent } | { valid: false; reason: DeadLetterReason; detail: string };

const envelopeKeys = ['data', 'id', 'type'].join();

/** Whether a message body is an event exactly as `POST /events` accepts it. */
export function checkMessage(body: string): CheckedMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    return { valid: false, reason: 'not JSON', detail: (error as Error).message };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || Object.keys(parsed).sort().join() !== envelopeKeys) {
    return { valid: false, reason: 'not an event envelope { id, type, data }', detail: Array.isArray(parsed) ? 'an array' : `keys: ${parsed && typeof parsed === 'object' ? Object.keys(parsed).join(', ') : typeof parsed}` };
  }
  const envelope = parsed as StreamEvent;
  if (!eventId.safeParse(envelope.id).success) return { valid: false, reason: 'invalid event id', detail: JSON.stringify(envelope.id).slice(0, 200) };
  const event = PublishRequest.safeParse({ type: envelope.type, data: envelope.data });
  if (!event.success) return { valid: false, reason: 'not a valid event', detail: event.error.issues.map((issue) => `${issue.path.join('.') || '(event)'}: ${issue.message}`).join('; ') };
  return { valid: true, event: envelope };
}

/** The event served in place of the dead letter at `seq` (see `deadLetterType`). */
export const deadLetterJson = (seq: number, reason: DeadLetterReason): string => JSON.stringify({ id: `dead-letter-${seq}`, seq, type: deadLetterType, data: { reason } });

/** How much of a dead letter's body the table keeps (a message may be up to the server's max_payload). */
const KEPT_BODY_CHARS = 64 * 1024;

/**
 * The dead letters this replica has found, in the `dead_letters` table of its id index: each is
 * logged as an error and counted (event_bus_dead_letters_total) the first time, whichever reader
 * found it (the follower, a page of GET /events, a delivery), and never again after.
 */
export class DeadLetters {
  private readonly insert: StatementSync;
  private readonly found: Counter;
  /** Seqs already set aside in this process (the table may be closed by the time a late reader finds one). */
  private readonly seen = new Set<number>();

  constructor(
    private readonly db: DatabaseSync,
    private readonly logger: Logger,
    metrics: Registry,
    private readonly stream: string,
  ) {
    this.insert = db.prepare('INSERT OR IGNORE INTO dead_letters (seq, reason, detail, body, bytes, found_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.found = new Counter({ name: 'event_bus_dead_letters_total', help: 'Messages of the JetStream stream that are not valid events, set aside (served as DeadLetter events)', registers: [metrics] });
  }

  /** Creates the table (in the id index's transaction that opens it). */
  static createTable(db: DatabaseSync): void {
    db.exec('CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL, body TEXT NOT NULL, bytes INTEGER NOT NULL, found_at TEXT NOT NULL) STRICT');
  }

  /** Records the dead letter at `seq`; a seq recorded before (by this process or in the table) is not logged again. */
  record(seq: number, body: string, reason: DeadLetterReason, detail: string): void {
    if (this.seen.has(seq)) return;
    this.seen.add(seq);
    let known = false;
    try {
      if (this.db.isOpen) known = Number(this.insert.run(seq, reason, detail, body.slice(0, KEPT_BODY_CHARS), body.length, new Date().toISOString()).changes) === 0;
    } catch (error) {
      this.logger.error({ err: error, seq }, 'a dead letter could not be written to the id index');
    }
    if (known) return;
    this.found.inc();
    this.logger.error({ stream: this.stream, seq, reason, detail, bytes: body.length }, `message ${seq} of the JetStream stream is not a valid event (${reason}): set aside, served as a ${deadLetterType} event`);
  }
}
