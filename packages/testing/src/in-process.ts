import type { Express } from 'express';
import { startEventBus, testBusSecret, type ServiceProcess } from './processes.js';
import { makeTempDir } from './wait.js';
import { createBusClient, createLogger, createMetricsRegistry, Lifecycle, openDatabase, Projection, type EventServiceDeps, type ProjectionOptions, type ProjectionSpec, type Registry } from '@blog/common';

/**
 * The dependencies a service's `createXApp` takes, built for real: the state lives in `dataDir`,
 * and the bus is a real event bus at `busUrl` (requests to it signed with the test secret). Nothing
 * is mocked. Without a verifier the app takes unsigned deliveries, so tests can post them plainly;
 * the signature checks have tests of their own.
 */
export async function createEventServiceDeps<S>(
  spec: ProjectionSpec<S>,
  { busUrl, dataDir, ...projectionOptions }: { busUrl: string; dataDir: string } & Pick<ProjectionOptions<S>, 'maxWaiting' | 'outboxStallAfterMs'>,
): Promise<EventServiceDeps<S>> {
  const logger = createLogger('test', 'silent');
  const metrics = createMetricsRegistry('test');
  const bus = createBusClient({ baseUrl: busUrl, timeoutMs: 2_000, secret: testBusSecret });
  const lifecycle = new Lifecycle();
  const projection = await Projection.open({ spec, dataDir, bus, logger, metrics, lifecycle, ...projectionOptions });
  return { logger, metrics, lifecycle, bus, projection };
}

export interface AppUnderTest<S> {
  /** A real event bus process with no subscribers: the service under test hears only what the test delivers. */
  bus: ServiceProcess;
  deps: EventServiceDeps<S>;
  app: Express;
  dataDir: string;
  /** Closes the projection, stops the bus and deletes the data. */
  close(): Promise<void>;
}

/** A service's app built in process on real dependencies, next to a real event bus: for supertest. */
export async function startAppUnderTest<S>(spec: ProjectionSpec<S>, createApp: (deps: EventServiceDeps<S>) => Express): Promise<AppUnderTest<S>> {
  const bus = await startEventBus();
  const data = await makeTempDir();
  const deps = await createEventServiceDeps(spec, { busUrl: bus.url, dataDir: data.path });
  const underTest: AppUnderTest<S> = {
    bus,
    deps,
    app: createApp(deps),
    dataDir: data.path,
    // Closes whatever deps the test left in place (a restart test swaps them).
    close: async () => {
      await underTest.deps.projection.close();
      await bus.destroy();
      await data.remove();
    },
  };
  return underTest;
}

/** A projection's state on a real SQLite database in memory: for testing domain functions alone. */
export function openInMemory<S>(spec: ProjectionSpec<S>): S {
  return spec.open(openDatabase(':memory:', { durability: 'normal' }));
}

/** The value of a metric without labels of its own (the first series of it); undefined when there is no such metric. */
export async function metricValue(registry: Registry, name: string): Promise<number | undefined> {
  return (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
}
