import type { Express, RequestHandler } from 'express';
import { z } from 'zod';
import { createBusClient, type BusClient } from './bus-client.js';
import { baseConfigSchema, busUrlSchema, parseConfig, timeoutMsSchema } from './config.js';
import { DeliveryEnvelope } from './events.js';
import { parseBody } from './http-app.js';
import { exitOnSignals, Lifecycle, startServer, type RunningServer } from './lifecycle.js';
import { createLogger, withRequestId, type Logger } from './logging.js';
import { createMetricsRegistry, type Registry } from './metrics.js';
import { Projection, type ProjectionSpec } from './projection.js';

/** Settings of every service that consumes the log (all but the bus). */
export function eventServiceConfigSchema(service: string, defaultPort: number) {
  return baseConfigSchema(service, defaultPort).extend({
    EVENT_BUS_URL: busUrlSchema,
    // Publishing waits for the bus's fsync; past this a caller gets a 503 rather than a hang.
    BUS_TIMEOUT_MS: timeoutMsSchema(5_000),
    SNAPSHOT_EVERY: z.coerce.number().int().min(1).default(10_000),
  });
}
export type EventServiceConfig = z.infer<ReturnType<typeof eventServiceConfigSchema>>;

/** Everything a service's `createXApp` needs, built by `runEventService` or by a test. */
export interface EventServiceDeps<S> {
  logger: Logger;
  metrics: Registry;
  lifecycle: Lifecycle;
  bus: BusClient;
  projection: Projection<S>;
}

/** `POST /events`: the bus delivers here; the answer tells it how far this service has got. */
export function receiveEvents<S>(projection: Projection<S>): RequestHandler {
  return async (req, res) => {
    const envelope = parseBody(DeliveryEnvelope, req);
    res.json(await withRequestId(req.get('x-request-id') ?? envelope.id, () => projection.deliver(envelope)));
  };
}

export interface EventServiceOptions<S, Extra extends z.ZodObject> {
  service: string;
  defaultPort: number;
  /** The service's own settings, validated together with the common ones. */
  extraConfig?: Extra;
  /** The projection, or a function of the service's own settings that builds it. */
  spec: ProjectionSpec<S> | ((config: z.infer<Extra>) => ProjectionSpec<S>);
  createApp: (deps: EventServiceDeps<S>) => Express;
}

/**
 * Starts a log-consuming service: config, state from disk, HTTP server, catch-up from the bus, and
 * graceful shutdown. Each service's `index.ts` is one call to this.
 */
export async function runEventService<S, Extra extends z.ZodObject = z.ZodObject>(options: EventServiceOptions<S, Extra>): Promise<RunningServer> {
  const schema = eventServiceConfigSchema(options.service, options.defaultPort).extend(options.extraConfig?.shape ?? {});
  let config: EventServiceConfig;
  try {
    config = parseConfig(schema) as EventServiceConfig;
  } catch (error) {
    process.stderr.write(`${options.service}: ${(error as Error).message}\n`);
    process.exit(1);
  }
  const spec = typeof options.spec === 'function' ? options.spec(config as z.infer<Extra>) : options.spec;
  const logger = createLogger(options.service, config.LOG_LEVEL);
  const metrics = createMetricsRegistry(options.service);
  const lifecycle = new Lifecycle();
  const bus = createBusClient({ baseUrl: config.EVENT_BUS_URL, timeoutMs: config.BUS_TIMEOUT_MS });
  const projection = await Projection.open({ spec, dataDir: config.DATA_DIR, bus, logger, metrics, snapshotEvery: config.SNAPSHOT_EVERY }).catch(
    (error: unknown) => {
      logger.fatal({ err: error, dataDir: config.DATA_DIR }, `cannot load the state: ${(error as Error).message}`);
      process.exit(1);
    },
  );

  const app = options.createApp({ logger, metrics, lifecycle, bus, projection });
  const catchingUp = new AbortController();
  const running = await startServer({
    app,
    port: config.PORT,
    host: config.HOST,
    logger,
    lifecycle,
    onStop: async () => {
      catchingUp.abort();
      await projection.close();
    },
  });
  exitOnSignals(running, logger, config.SHUTDOWN_TIMEOUT_MS);
  void catchUpUntilReady(projection, lifecycle, logger, catchingUp.signal);
  return running;
}

/** Ready only once caught up with the bus; while the bus is down, keeps trying with backoff. */
export async function catchUpUntilReady<S>(projection: Projection<S>, lifecycle: Lifecycle, logger: Logger, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    try {
      await projection.catchUp();
      lifecycle.markReady();
      logger.info({ lastSeq: projection.lastSeq }, 'caught up with the event bus');
      return;
    } catch (error) {
      const delayMs = backoffMs(attempt);
      // The bus starting after us is normal: say so once, then now and then, without a stack.
      if (attempt % 10 === 0) logger.warn({ error: (error as Error).message, attempt: attempt + 1, retryInMs: delayMs }, 'catch-up failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** Capped exponential backoff with jitter: 100 ms, 200 ms, ... up to 5 s. */
export function backoffMs(attempt: number, baseMs = 100, capMs = 5_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
