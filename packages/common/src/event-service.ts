import type { Express } from 'express';
import { z } from 'zod';
import { backoffMs, sleep } from './backoff.js';
import { createBusClient, type BusClient } from './bus-client.js';
import { baseConfigSchema, busUrlSchema, parseConfig, timeoutMsSchema } from './config.js';
import { batchLimits, DeliveryBatch, DeliveryEnvelope, logIdHeader } from './events.js';
import { parseBody } from './http-app.js';
import { exitOnSignals, Lifecycle, startServer, type RunningServer } from './lifecycle.js';
import { createLogger, withRequestId, type Logger } from './logging.js';
import { createMetricsRegistry, type Registry } from './metrics.js';
import { LogReplacedError, Projection, type ProjectionSpec } from './projection.js';
import { busSecretSchema, SignatureVerifier, signedJson, warnIfUnsigned } from './signing.js';

/** Settings of every service that consumes the log (all but the bus). */
export function eventServiceConfigSchema(service: string, defaultPort: number) {
  return baseConfigSchema(service, defaultPort).extend({
    EVENT_BUS_URL: busUrlSchema,
    // Publishing waits for the bus's fsync; past this a caller gets a 503 rather than a hang.
    BUS_TIMEOUT_MS: timeoutMsSchema(5_000),
    // Shared with the bus: our requests to it are signed, its deliveries to us must be.
    EVENT_BUS_SECRET: busSecretSchema,
    // push: the bus POSTs to /events (one subscriber per service). pull: this process follows the
    // log itself with long polls and its own cursor, so every replica of a service sees every event.
    EVENT_DELIVERY: z.enum(['push', 'pull']).default('push'),
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
  /** Checks that deliveries come from the bus (signed for this service); undefined accepts unsigned ones. */
  verifier?: SignatureVerifier | undefined;
}

/**
 * The internal route `POST /events`: the bus delivers one event or a batch here, signed; the answer
 * tells it how far this service has got, and that batches are welcome.
 */
export function receiveEvents<S>({ projection, verifier, lifecycle }: Pick<EventServiceDeps<S>, 'projection' | 'verifier' | 'lifecycle'>): (app: Express) => void {
  return (app) => {
    app.post('/events', signedJson(verifier, batchLimits.bodyMaxBytes), async (req, res) => {
      const delivered = Array.isArray(req.body) ? DeliveryBatch.parse(req.body) : parseBody(DeliveryEnvelope, req);
      const requestId = req.get('x-request-id') ?? (Array.isArray(delivered) ? delivered[0]!.id : delivered.id);
      const ack = await withRequestId(requestId, () => projection.deliver(delivered, { logId: req.get(logIdHeader) })).catch((error: unknown) => {
        if (error instanceof LogReplacedError) lifecycle.markBlocked(error.message);
        throw error;
      });
      res.json(ack);
    });
  };
}

export interface EventServiceOptions<S, Extra extends z.ZodObject> {
  service: string;
  defaultPort: number;
  /** The service's own settings, validated together with the common ones. */
  extraConfig?: Extra;
  /** The projection, or a function of the service's own settings that builds it. */
  spec: ProjectionSpec<S> | ((config: z.infer<Extra>) => ProjectionSpec<S>);
  /** Builds the app; `config` is the service's own settings (see `extraConfig`). */
  createApp: (deps: EventServiceDeps<S>, config: z.infer<Extra>) => Express;
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
  warnIfUnsigned(config.EVENT_BUS_SECRET, logger);
  const secret = config.EVENT_BUS_SECRET;
  const verifier = secret ? new SignatureVerifier(secret, options.service) : undefined;
  const bus = createBusClient({ baseUrl: config.EVENT_BUS_URL, timeoutMs: config.BUS_TIMEOUT_MS, secret });
  const projection = await Projection.open({ spec, dataDir: config.DATA_DIR, bus, logger, metrics, lifecycle }).catch(
    (error: unknown) => {
      logger.fatal({ err: error, dataDir: config.DATA_DIR }, `cannot load the state: ${(error as Error).message}`);
      process.exit(1);
    },
  );

  const app = options.createApp({ logger, metrics, lifecycle, bus, projection, verifier }, config as z.infer<Extra>);
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
      await bus.close();
    },
  });
  exitOnSignals(running, logger, config.SHUTDOWN_TIMEOUT_MS);
  void catchUpUntilReady(projection, lifecycle, logger, catchingUp.signal).then(() => {
    if (config.EVENT_DELIVERY === 'pull' && lifecycle.isReady()) void followTheLog(projection, bus, lifecycle, logger, catchingUp.signal);
  });
  return running;
}

/** How long one long poll of `EVENT_DELIVERY=pull` waits for something new. */
const LONG_POLL_MS = 20_000;

/** `EVENT_DELIVERY=pull`: applies whatever the bus has after `lastSeq`, as soon as it has it, until stopped. */
export async function followTheLog<S>(projection: Projection<S>, bus: BusClient, lifecycle: Lifecycle, logger: Logger, signal: AbortSignal, pageSize = 1_000): Promise<void> {
  for (let failures = 0; !signal.aborted; ) {
    try {
      const { events, logId } = await bus.readEvents(projection.lastSeq, pageSize, { waitMs: LONG_POLL_MS, signal });
      if (events.length > 0) await projection.deliver(events, { logId });
      failures = 0;
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof LogReplacedError) {
        lifecycle.markBlocked(error.message);
        return;
      }
      // Logged and final (the process is failed): retrying cannot store anything.
      if (projection.storageFailed) return;
      const delayMs = backoffMs(failures);
      if (failures % 10 === 0) logger.warn({ error: (error as Error).message, retryInMs: delayMs }, 'following the log failed; retrying');
      failures += 1;
      await sleep(delayMs, signal);
    }
  }
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
      // Retrying cannot help: someone has to choose between this state and the new log.
      if (error instanceof LogReplacedError) {
        lifecycle.markBlocked(error.message);
        return;
      }
      if (projection.storageFailed) return;
      const delayMs = backoffMs(attempt);
      // The bus starting after us is normal: say so once, then now and then, without a stack.
      if (attempt % 10 === 0) logger.warn({ error: (error as Error).message, attempt: attempt + 1, retryInMs: delayMs }, 'catch-up failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
