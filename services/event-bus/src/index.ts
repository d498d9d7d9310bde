import { createLogger, createMetricsRegistry, exitOnSignals, Lifecycle, SignatureVerifier, startServer, warnIfUnsigned } from '@blog/common';
import { createEventBusApp } from './app.js';
import { loadEventBusConfig, type EventBusConfig } from './config.js';
import { Delivery } from './delivery.js';
import { EventLog } from './event-log.js';
import type { EventStore } from './event-store.js';
import { JetStreamDelivery } from './jetstream-delivery.js';
import { JetStreamStore } from './jetstream-store.js';

let config: EventBusConfig;
try {
  config = loadEventBusConfig();
} catch (error) {
  process.stderr.write(`event-bus: ${(error as Error).message}\n`);
  process.exit(1);
}

const logger = createLogger('event-bus', config.LOG_LEVEL);
const metrics = createMetricsRegistry('event-bus');
const lifecycle = new Lifecycle();
warnIfUnsigned(config.EVENT_BUS_SECRET, logger);
const deliveryOptions = {
  subscribers: config.SUBSCRIBERS,
  logger,
  metrics,
  timeoutMs: config.DELIVERY_TIMEOUT_MS,
  retryMaxDelayMs: config.RETRY_MAX_DELAY_MS,
  secret: config.EVENT_BUS_SECRET,
};

/** The log and who delivers it: the embedded database with saved cursors, or JetStream with durable consumers. */
async function openStore(): Promise<{ store: EventStore; delivery: { start(): unknown; stop(): Promise<void> } }> {
  const { EVENT_STORE: kind } = config;
  if (kind.kind === 'jetstream') {
    const credentials = config.NATS_USER && config.NATS_PASSWORD ? { user: config.NATS_USER, password: config.NATS_PASSWORD } : undefined;
    if (!credentials) logger.warn('NATS_USER and NATS_PASSWORD are not set: the bus connects to JetStream without credentials, so whoever reaches the server can write to the log');
    const store = await JetStreamStore.open({
      servers: kind.servers,
      stream: config.EVENT_STREAM,
      replicas: config.EVENT_STREAM_REPLICAS,
      timeoutMs: config.DELIVERY_TIMEOUT_MS,
      dataDir: config.DATA_DIR,
      logger,
      metrics,
      credentials,
    });
    const delivery = new JetStreamDelivery({ ...deliveryOptions, store });
    return { store, delivery: { start: () => delivery.start(), stop: () => delivery.stop() } };
  }
  const store = await EventLog.open(config.DATA_DIR, logger);
  const cursors = store.cursors(config.SUBSCRIBERS.map((s) => s.name));
  return { store, delivery: new Delivery({ ...deliveryOptions, store, cursors, cursorFlushMs: config.CURSOR_FLUSH_MS }) };
}

// A damaged log, an unwritable DATA_DIR or an unreachable JetStream must stop the start with a clear message.
const { store, delivery } = await openStore().catch((error: unknown) => {
  logger.fatal({ err: error, dataDir: config.DATA_DIR, eventStore: config.EVENT_STORE }, `cannot open the event log: ${(error as Error).message}`);
  process.exit(1);
});
const verifier = config.EVENT_BUS_SECRET ? new SignatureVerifier(config.EVENT_BUS_SECRET, 'event-bus') : undefined;

const running = await startServer({
  app: createEventBusApp({ logger, metrics, lifecycle, store, verifier }),
  port: config.PORT,
  host: config.HOST,
  logger,
  lifecycle,
  onStop: async () => {
    await delivery.stop();
    await store.close();
  },
});
exitOnSignals(running, logger, config.SHUTDOWN_TIMEOUT_MS);
await delivery.start();
lifecycle.markReady();
logger.info({ subscribers: config.SUBSCRIBERS.map((s) => s.name), events: store.index.visibleSeq, store: config.EVENT_STORE.kind }, 'event bus ready');
