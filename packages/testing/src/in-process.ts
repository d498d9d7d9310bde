import { createBusClient, createLogger, createMetricsRegistry, Lifecycle, Projection, type EventServiceDeps, type ProjectionSpec } from '@blog/common';

/**
 * The dependencies a service's `createXApp` takes, built for real: the state lives in `dataDir`,
 * and the bus is a real event bus at `busUrl`. Nothing is mocked.
 */
export async function createEventServiceDeps<S>(spec: ProjectionSpec<S>, { busUrl, dataDir }: { busUrl: string; dataDir: string }): Promise<EventServiceDeps<S>> {
  const logger = createLogger('test', 'silent');
  const metrics = createMetricsRegistry('test');
  const bus = createBusClient({ baseUrl: busUrl, timeoutMs: 2_000 });
  const projection = await Projection.open({ spec, dataDir, bus, logger, metrics });
  const lifecycle = new Lifecycle();
  return { logger, metrics, lifecycle, bus, projection };
}
