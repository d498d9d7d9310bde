import {
  batchLimits,
  Counter,
  createServiceApp,
  EventPageQuery,
  headSeqHeader,
  logIdHeader,
  parseBody,
  PublishBatch,
  PublishRequest,
  signedJson,
  type Lifecycle,
  type Logger,
  type Registry,
  type SignatureVerifier,
} from '@blog/common';
import type { Express } from 'express';
import type { EventStore } from './event-store.js';
import { sendEvents } from './send-events.js';

export interface EventBusAppDeps {
  logger: Logger;
  metrics: Registry;
  lifecycle: Lifecycle;
  store: EventStore;
  /** Checks that publishers and readers hold EVENT_BUS_SECRET; undefined accepts unsigned requests. */
  verifier?: SignatureVerifier | undefined;
}

export function createEventBusApp({ logger, metrics, lifecycle, store, verifier }: EventBusAppDeps): Express {
  const published = new Counter({
    name: 'event_bus_events_published_total',
    help: 'Events stored, by type',
    labelNames: ['type'] as const,
    registers: [metrics],
  });

  const signed = signedJson(verifier, batchLimits.bodyMaxBytes);

  return createServiceApp({ logger, metrics, lifecycle }, () => {}, (app) => {
    // Stores the event (201), or finds it already stored under the same id (200); either way the
    // answer comes only once the event is on disk. An array is stored in order with one write and
    // answered with the array of stored events (201 if any of them is new).
    app.post('/events', signed, async (req, res) => {
      res.setHeader(logIdHeader, store.logId);
      const body: unknown = req.body;
      const batch = Array.isArray(body) ? PublishBatch.parse(body) : [parseBody(PublishRequest, req)];
      try {
        const results = await store.appendAll(batch);
        for (const { envelope, created } of results) if (created) published.inc({ type: envelope.type });
        const status = results.some((result) => result.created) ? 201 : 200;
        res.status(status).json(Array.isArray(body) ? results.map((result) => result.envelope) : results[0]!.envelope);
      } finally {
        if (store.index.failed) lifecycle.markFailed();
      }
    });

    // Every event in order (classic), or one page of them with ?after=SEQ&limit=N. With &wait=MS
    // it is a long poll: when nothing is after SEQ yet, it answers as soon as something is, or with
    // an empty page after MS (how services that pull, such as replicas, follow the log).
    app.get('/events', signed, async (req, res) => {
      const { after, limit, wait } = EventPageQuery.parse(req.query);
      // The reader may know of events another bus process stored a moment ago (a shared log).
      if (store.index.visibleSeq <= after) await store.syncHead?.();
      if (wait && store.index.visibleSeq <= after) {
        const gaveUp = new AbortController();
        const timer = setTimeout(() => gaveUp.abort(), wait);
        const closed = () => gaveUp.abort();
        res.on('close', closed);
        const forget = lifecycle.onStopping(closed);
        await store.index.waitForEventAfter(after, gaveUp.signal);
        clearTimeout(timer);
        res.off('close', closed);
        forget();
      }
      if (res.destroyed) return;
      // The answer ends at the head as it is now: what is stored meanwhile is for the next page.
      const head = store.index.visibleSeq;
      res.setHeader(headSeqHeader, String(head));
      res.setHeader(logIdHeader, store.logId);
      await sendEvents(res, store, after, limit === undefined ? head : Math.min(head, after + limit));
    });
  });
}
