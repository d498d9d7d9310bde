import type { EventEnvelope, PublishRequest } from '@blog/common';
import type { EventIndex } from './event-index.js';

export interface AppendResult {
  envelope: EventEnvelope;
  /** false when an event with this id was already in the log (a producer's retry). */
  created: boolean;
}

/**
 * Where the bus keeps its log: the embedded file (`EventLog`, the default) or a JetStream stream
 * (`JetStreamStore`). Either way the events are numbered 1, 2, 3... in the order they were accepted,
 * an id is stored once, and `index` shows only what is durable.
 */
export interface EventStore {
  readonly index: EventIndex;
  /**
   * Stores events in the given order; resolves once all are durable. An id already in the log gets
   * the stored event back; an id reused for a different event refuses the whole batch with 409.
   */
  appendAll(requests: readonly PublishRequest[]): Promise<AppendResult[]>;
  close(): Promise<void>;
}
