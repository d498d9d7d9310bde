import express, { type Express, type Request } from 'express';
import helmet from 'helmet';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import { AppError, createErrorHandler, notFoundHandler } from './errors.js';
import { limits } from './contract.js';
import { requestLogging, type Logger } from './logging.js';
import { httpMetrics } from './metrics.js';
import type { Lifecycle } from './lifecycle.js';

export interface ServiceAppDeps {
  logger: Logger;
  metrics: Registry;
  lifecycle: Lifecycle;
}

/**
 * The Express app every service starts from: security headers, request id and access log, metrics,
 * health and readiness, the internal routes (which read and check their own signed bodies), strict
 * JSON bodies for the public routes, then one JSON error handler. No CORS headers are ever sent:
 * browsers reach the services only through the one public origin.
 */
export function createServiceApp(
  { logger, metrics, lifecycle }: ServiceAppDeps,
  addRoutes: (app: Express) => void,
  addInternalRoutes: (app: Express) => void = () => {},
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  // Which service answered: lets anyone check, through any entry point, where a route leads.
  const { service } = logger.bindings() as { service?: unknown };
  const servedBy = typeof service === 'string' ? service : 'unknown';
  app.use((_req, res, next) => {
    res.setHeader('x-served-by', servedBy);
    next();
  });
  app.use(requestLogging(logger));
  app.use(httpMetrics(metrics));

  app.get('/healthz', (_req, res) => {
    const alive = lifecycle.isAlive();
    res.status(alive ? 200 : 503).json({ status: alive ? 'ok' : 'failed', state: lifecycle.state });
  });
  app.get('/readyz', (_req, res) => {
    const ready = lifecycle.isReady();
    const reason = lifecycle.reason === undefined ? {} : { reason: lifecycle.reason };
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', state: lifecycle.state, ...reason });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.metrics());
  });

  addInternalRoutes(app);
  app.use(express.json({ limit: limits.bodyMaxBytes }));
  addRoutes(app);
  app.use(notFoundHandler);
  app.use(createErrorHandler(logger));
  return app;
}

/** Validates a JSON body with a shared schema; a missing or non-JSON body is a 400 too. */
export function parseBody<S extends z.ZodType>(schema: S, req: Request): z.infer<S> {
  if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
    throw new AppError({
      status: 400,
      code: 'invalid_request',
      message: 'The request body must be a JSON object sent with Content-Type: application/json',
    });
  }
  return schema.parse(req.body);
}
