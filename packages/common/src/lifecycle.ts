import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from './logging.js';

export type LifecycleState = 'starting' | 'ready' | 'stopping' | 'failed' | 'blocked';

/** What /healthz and /readyz report: one small state machine per process. */
export class Lifecycle {
  state: LifecycleState = 'starting';
  /** Why the process is blocked: said on /readyz, for whoever has to act. */
  reason: string | undefined;
  private readonly stoppingListeners: Array<() => void> = [];

  markReady(): void {
    if (this.state === 'starting') this.state = 'ready';
  }
  markStopping(): void {
    if (this.state !== 'failed') this.state = 'stopping';
    for (const listener of this.stoppingListeners.splice(0)) listener();
  }
  /** Long-lived work (e.g. event streams, long polls) that must end for the server to close; returns a function that forgets it. */
  onStopping(listener: () => void): () => void {
    if (this.state === 'stopping') {
      listener();
      return () => {};
    }
    this.stoppingListeners.push(listener);
    return () => {
      const at = this.stoppingListeners.indexOf(listener);
      if (at !== -1) this.stoppingListeners.splice(at, 1);
    };
  }
  /** Something the process cannot recover from by itself (a failed disk write): restart it. */
  markFailed(reason?: string): void {
    this.state = 'failed';
    if (reason !== undefined) this.reason = reason;
  }
  /**
   * Something a restart cannot fix and an operator must (the bus's log was replaced): unready, so
   * no traffic comes, but alive, so the orchestrator does not restart it in a loop.
   */
  markBlocked(reason: string): void {
    if (this.state === 'failed' || this.state === 'stopping') return;
    this.state = 'blocked';
    this.reason = reason;
  }
  isReady(): boolean {
    return this.state === 'ready';
  }
  isAlive(): boolean {
    return this.state !== 'failed';
  }
}

export interface RunningServer {
  server: http.Server;
  url: string;
  /** Stops accepting, finishes in-flight requests, then runs the service's own cleanup. */
  stop: () => Promise<void>;
}

export interface StartServerOptions {
  app: Express;
  port: number;
  host: string;
  logger: Logger;
  lifecycle: Lifecycle;
  /** Runs after the HTTP server has closed: stop background work, flush state. */
  onStop?: () => Promise<void>;
  /** After this long, connections still open (streams, proxied streams) are cut so shutdown can finish. */
  drainTimeoutMs?: number;
}

export async function startServer({ app, port, host, logger, lifecycle, onStop, drainTimeoutMs = 5_000 }: StartServerOptions): Promise<RunningServer> {
  const server = http.createServer(app);
  // Longer than common proxies' idle timeouts, so they never reuse a connection we just closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: boundPort } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  logger.info({ url }, 'listening');

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      lifecycle.markStopping();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // close() only drops the keep-alive connections idle right now; one whose request is still in
      // flight turns idle after its response and would hold close() until keepAliveTimeout.
      const sweep = setInterval(() => server.closeIdleConnections(), 25);
      const cut = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(cut);
      await onStop?.();
    })();
    return stopping;
  };
  return { server, url, stop };
}

/**
 * Graceful shutdown for a process: on SIGTERM or SIGINT, stop within `timeoutMs` and exit 0, or
 * exit 1 when something hangs. A crash is logged and exits 1 so the supervisor restarts us.
 */
export function exitOnSignals(running: Pick<RunningServer, 'stop'>, logger: Logger, timeoutMs: number): void {
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    running.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled rejection');
    process.exit(1);
  });
}
