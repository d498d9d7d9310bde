import type { EventEnvelope, PublishRequest } from '@blog/common';
import type { EventIndex } from './event-index.js';

export interface AppendResult {
  envelope: EventEnvelope;
  /** false when an event with this id was already in the log (a producer's retry). */
  created: boolean;
}

/** One event as stored: its envelope's JSON exactly as sent to subscribers, with its seq and id. */
export interface StoredEvent {
  seq: number;
  id: string;
  json: string;
}

/**
 * Where the bus keeps its log: an embedded SQLite database (`EventLog`, the default) or a JetStream
 * stream (`JetStreamStore`). Either way the events are numbered 1, 2, 3... in the order they were
 * accepted, an id is stored once, `index` shows only what is durable, and nothing holds the whole
 * history in memory: reads come from the store, through a bounded cache of the newest events.
 */
export interface EventStore {
  /** Made when the log was created; never the same for two logs (see `logIdHeader`). */
  readonly logId: string;
  readonly index: EventIndex;
  /**
   * Stores events in the given order; resolves once all are durable. An id already in the log gets
   * the stored event back; an id reused for a different event refuses the whole batch with 409.
   */
  appendAll(requests: readonly PublishRequest[]): Promise<AppendResult[]>;
  /** The visible events after `after`, oldest first: at most `limit`, and `maxBytes` unless the first alone is more. */
  read(after: number, limit: number, maxBytes?: number): Promise<StoredEvent[]>;
  /**
   * For a log shared by several bus processes (JetStream): makes visible what the others stored,
   * so that a reader sees every event some bus has answered for. Called before answering a reader
   * who has everything this process shows.
   */
  syncHead?(): Promise<void>;
  close(): Promise<void>;
}
