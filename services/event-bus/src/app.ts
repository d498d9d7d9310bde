import { Counter, createServiceApp, EventPageQuery, parseBody, PublishRequest, type Lifecycle, type Logger, type Registry } from '@blog/common';
import type { Express } from 'express';
import type { EventLog } from './event-log.js';

export interface EventBusAppDeps {
  logger: Logger;
  metrics: Registry;
  lifecycle: Lifecycle;
  log: EventLog;
}

export function createEventBusApp({ logger, metrics, lifecycle, log }: EventBusAppDeps): Express {
  const published = new Counter({
    name: 'event_bus_events_published_total',
    help: 'Events stored, by type',
    labelNames: ['type'] as const,
    registers: [metrics],
  });

  return createServiceApp({ logger, metrics, lifecycle }, (app) => {
    // Stores the event (201), or finds it already stored under the same id (200); either way the
    // answer comes only once the event is on disk.
    app.post('/events', async (req, res) => {
      const request = parseBody(PublishRequest, req);
      try {
        const { envelope, created } = await log.append(request);
        if (created) published.inc({ type: envelope.type });
        res.status(created ? 201 : 200).json(envelope);
      } finally {
        if (log.failed) lifecycle.markFailed();
      }
    });

    // Every event in order (classic), or one page of them with ?after=SEQ&limit=N.
    app.get('/events', (req, res) => {
      const { after, limit } = EventPageQuery.parse(req.query);
      res.setHeader('x-head-seq', String(log.durableSeq));
      res.type('application/json').send(`[${log.read(after, limit).join(',')}]`);
    });
  });
}
