import { createLogger, createMetricsRegistry, exitOnSignals, Lifecycle, SignatureVerifier, startServer, warnIfUnsigned } from '@blog/common';
import { createEventBusApp } from './app.js';
import { loadEventBusConfig } from './config.js';
import { Delivery } from './delivery.js';
import { EventLog } from './event-log.js';
import { SubscriberCursors } from './subscriber-cursors.js';

let config;
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
// A damaged log or an unwritable DATA_DIR must stop the start with a clear message.
const [log, cursors] = await Promise.all([
  EventLog.open(config.DATA_DIR, logger),
  SubscriberCursors.open(config.DATA_DIR, config.SUBSCRIBERS.map((s) => s.name)),
]).catch((error: unknown) => {
  logger.fatal({ err: error, dataDir: config.DATA_DIR }, `cannot open the event log: ${(error as Error).message}`);
  process.exit(1);
});
const delivery = new Delivery({
  log,
  cursors,
  subscribers: config.SUBSCRIBERS,
  logger,
  metrics,
  timeoutMs: config.DELIVERY_TIMEOUT_MS,
  retryMaxDelayMs: config.RETRY_MAX_DELAY_MS,
  cursorFlushMs: config.CURSOR_FLUSH_MS,
  secret: config.EVENT_BUS_SECRET,
});
const verifier = config.EVENT_BUS_SECRET ? new SignatureVerifier(config.EVENT_BUS_SECRET, 'event-bus') : undefined;

const running = await startServer({
  app: createEventBusApp({ logger, metrics, lifecycle, log, verifier }),
  port: config.PORT,
  host: config.HOST,
  logger,
  lifecycle,
  onStop: async () => {
    await delivery.stop();
    await log.close();
  },
});
exitOnSignals(running, logger, config.SHUTDOWN_TIMEOUT_MS);
delivery.start();
lifecycle.markReady();
logger.info({ subscribers: config.SUBSCRIBERS.map((s) => s.name), events: log.durableSeq }, 'event bus ready');
