import {
  batchLimits,
  Counter,
  createServiceApp,
  EventPageQuery,
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
import type { EventLog } from './event-log.js';

export interface EventBusAppDeps {
  logger: Logger;
  metrics: Registry;
  lifecycle: Lifecycle;
  log: EventLog;
  /** Checks that publishers and readers hold EVENT_BUS_SECRET; undefined accepts unsigned requests. */
  verifier?: SignatureVerifier | undefined;
}

export function createEventBusApp({ logger, metrics, lifecycle, log, verifier }: EventBusAppDeps): Express {
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
      const body: unknown = req.body;
      const batch = Array.isArray(body) ? PublishBatch.parse(body) : [parseBody(PublishRequest, req)];
      try {
        const results = await log.appendAll(batch);
        for (const { envelope, created } of results) if (created) published.inc({ type: envelope.type });
        const status = results.some((result) => result.created) ? 201 : 200;
        res.status(status).json(Array.isArray(body) ? results.map((result) => result.envelope) : results[0]!.envelope);
      } finally {
        if (log.failed) lifecycle.markFailed();
      }
    });

    // Every event in order (classic), or one page of them with ?after=SEQ&limit=N.
    app.get('/events', signed, (req, res) => {
      const { after, limit } = EventPageQuery.parse(req.query);
      res.setHeader('x-head-seq', String(log.durableSeq));
      res.type('application/json').send(`[${log.read(after, limit).join(',')}]`);
    });
  });
}
