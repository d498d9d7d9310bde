import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

interface RequestContext {
  requestId: string;
}

/** Keeps the current request id for every log line and every outgoing call made while serving it. */
const requestContext = new AsyncLocalStorage<RequestContext>();

export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.requestId;
}

/** Runs `work` as if serving a request with this id, e.g. an event delivery from the bus. */
export function withRequestId<T>(requestId: string, work: () => T): T {
  return requestContext.run({ requestId }, work);
}

export function createLogger(service: string, level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => {
        const requestId = currentRequestId();
        return requestId ? { requestId } : {};
      },
    },
    destination,
  );
}

const REQUEST_ID_HEADER = 'x-request-id';
const validRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

/** Health probes and scrapes would drown everything else. */
const unloggedPaths = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * First middleware: takes the caller's x-request-id (or makes one), echoes it, keeps it for every
 * log line and outgoing call, and logs the request once answered: 5xx as errors, 4xx as info, the
 * rest at debug. Written here rather than with pino-http, which builds a child logger for every
 * request: under load that alone cost about a quarter of a service's throughput (see the README's
 * benchmark notes).
 */
export function requestLogging(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get(REQUEST_ID_HEADER);
    const requestId = incoming && validRequestId.test(incoming) ? incoming : randomUUID();
    res.setHeader(REQUEST_ID_HEADER, requestId);
    if (!unloggedPaths.has(req.url)) {
      const startedAt = performance.now();
      res.once('finish', () => {
        const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug';
        if (!logger.isLevelEnabled(level)) return;
        const fields = { requestId, req: { method: req.method, url: req.url }, res: { statusCode: res.statusCode }, responseTime: Math.round(performance.now() - startedAt) };
        logger[level](fields, 'request completed');
      });
    }
    requestContext.run({ requestId }, next);
  };
}

export { REQUEST_ID_HEADER };
