import { createLogger, exitOnSignals, Lifecycle, startServer } from '@blog/common';
import { loadRouteTable } from '@blog/routes';
import { createGateway } from './app.js';
import { loadGatewayConfig } from './config.js';

let config;
try {
  config = loadGatewayConfig();
} catch (error) {
  process.stderr.write(`gateway: ${(error as Error).message}\n`);
  process.exit(1);
}

const logger = createLogger('gateway', config.LOG_LEVEL);
const lifecycle = new Lifecycle();
let gateway;
try {
  gateway = createGateway({ logger, lifecycle, routes: loadRouteTable(config.INGRESS_FILE), upstreams: config.UPSTREAMS, clientDir: config.CLIENT_DIR, clientService: config.CLIENT_SERVICE });
} catch (error) {
  logger.fatal({ err: error, ingress: config.INGRESS_FILE }, `cannot start the gateway: ${(error as Error).message}`);
  process.exit(1);
}

const running = await startServer({ app: gateway.app, port: config.PORT, host: config.HOST, logger, lifecycle, onStop: () => Promise.resolve(gateway.close()) });
running.server.on('upgrade', (req, socket, head) => gateway.upgrade(req, socket, head));
exitOnSignals(running, logger, config.SHUTDOWN_TIMEOUT_MS);
lifecycle.markReady();
