import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { commentStatuses } from './contract.js';
import { commentContent, entityId, postTitle } from './limits.js';

/**
 * Every event that crosses the bus, defined once. The bus validates against these schemas before it
 * stores anything, and every consumer parses deliveries with them, so producers and consumers can
 * never disagree on a shape.
 */

const commentStatus = z.enum(commentStatuses);

/** Event ids are chosen by the producer so that a retried publish is recognised as the same event. */
export const eventId = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 letters, digits or . _ : -');
export const sequence = z.number().int().positive();

const commentFields = {
  id: entityId,
  postId: entityId,
  content: commentContent,
  status: commentStatus,
};

export const PostCreated = z.strictObject({
  type: z.literal('PostCreated'),
  data: z.strictObject({ id: entityId, title: postTitle }),
});
export const CommentCreated = z.strictObject({
  type: z.literal('CommentCreated'),
  data: z.strictObject({ ...commentFields, status: z.literal('pending') }),
});
export const CommentModerated = z.strictObject({
  type: z.literal('CommentModerated'),
  data: z.strictObject({ ...commentFields, status: z.enum(['approved', 'rejected']) }),
});
export const CommentUpdated = z.strictObject({
  type: z.literal('CommentUpdated'),
  data: z.strictObject(commentFields),
});

export const BlogEvent = z.discriminatedUnion('type', [PostCreated, CommentCreated, CommentModerated, CommentUpdated]);
export type BlogEvent = z.infer<typeof BlogEvent>;
export type EventType = BlogEvent['type'];
export type EventOf<T extends EventType> = Extract<BlogEvent, { type: T }>;
export const eventTypes = BlogEvent.options.map((option) => option.shape.type.value);

/** What a producer sends to `POST /events` on the bus: the classic `{type, data}`, plus an optional id. */
const withOptionalId = { id: eventId.optional() };
export const PublishRequest = z.discriminatedUnion('type', [
  PostCreated.extend(withOptionalId),
  CommentCreated.extend(withOptionalId),
  CommentModerated.extend(withOptionalId),
  CommentUpdated.extend(withOptionalId),
]);
export type PublishRequest = z.infer<typeof PublishRequest>;

/**
 * Internal traffic moves events in batches: the bus takes an array of publish requests (stored
 * together, one fsync) and sends a subscriber that asked for it (`maxBatch` in its ack) arrays of
 * envelopes. Both are bounded so that a batch always fits the internal body limit.
 */
export const batchLimits = { maxEvents: 1_000, maxBytes: 1024 * 1024, bodyMaxBytes: 4 * 1024 * 1024 } as const;
export const PublishBatch = z.array(PublishRequest).min(1).max(batchLimits.maxEvents);

/** An event as the bus stored it: numbered, with the id that makes every delivery idempotent. */
export type EventEnvelope = BlogEvent & { id: string; seq: number };

/**
 * What a consumer accepts on its own `POST /events`: any numbered envelope. The type is checked
 * separately so that an event type this consumer does not know yet is skipped, not refused.
 */
export const DeliveryEnvelope = z.object({
  id: eventId,
  seq: sequence,
  type: z.string().min(1).max(64),
  data: z.unknown(),
});
export type DeliveryEnvelope = z.infer<typeof DeliveryEnvelope>;
export const DeliveryBatch = z.array(DeliveryEnvelope).min(1).max(batchLimits.maxEvents);

/**
 * What a consumer answers to a delivery; `lastSeq` lets the bus skip what the consumer already has,
 * and `maxBatch` asks for arrays of up to that many events from now on (classic subscribers, which
 * answer anything else, keep getting one event per request).
 */
export const DeliveryAck = z.object({
  status: z.enum(['applied', 'duplicate', 'ignored']),
  lastSeq: z.number().int().nonnegative(),
  maxBatch: z.number().int().min(1).max(batchLimits.maxEvents).optional(),
});
export type DeliveryAck = z.infer<typeof DeliveryAck>;

/** A fresh id for a post, a comment or an event. */
export const newId = (): string => randomUUID();

/**
 * The id of an event published in reaction to another one: always the same for the same source, so
 * publishing it again after a crash or a redelivery is recognised by the bus as the same event.
 */
export function derivedEventId(sourceEventId: string, reaction: string): string {
  return `${reaction}-${createHash('sha256').update(sourceEventId).digest('hex').slice(0, 32)}`;
}

/**
 * Every answer of the bus that carries events (`GET /events`, a publish, a delivery) names the log
 * they come from. The id is made when the log is created, so a consumer that stored it with its
 * position notices a log that was replaced (a new volume, another store, a recreated stream) instead
 * of taking its low sequence numbers for events it already has.
 */
export const logIdHeader = 'x-log-id';
/** The highest sequence the bus has stored, on `GET /events`. */
export const headSeqHeader = 'x-head-seq';
