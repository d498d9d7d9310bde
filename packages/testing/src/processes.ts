import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { subscribers, type ComponentName, type SubscriberName } from '@blog/topology';
import { NatsServer } from './nats.js';
import { freePort, makeTempDir, waitFor } from './wait.js';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The secret the test stacks share (EVENT_BUS_SECRET): deliveries and publishes are signed with it. */
export const testBusSecret = randomBytes(32).toString('hex');

/** What a ServiceProcess runs (services/<name>): the bus and each service it pushes events to. */
export type ServiceName = Extract<ComponentName, 'event-bus'> | SubscriberName;
/** The services the bus pushes events to. */
export const consumerNames: readonly SubscriberName[] = subscribers.map((component) => component.name);

/** A real service process (its built `dist/index.js`) on 127.0.0.1, restartable on the same port and data. */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  private log = '';

  constructor(
    readonly name: ServiceName,
    readonly port: number,
    readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The OS process id while running (for memory readings in /proc). */
  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  get dataDir(): string {
    return this.env.DATA_DIR!;
  }

  /** Everything the process printed (the tail), for failure messages. */
  output(): string {
    return this.log;
  }

  /** Spawns the service; resolves once it answers `waitUntil` (a process that opens a large store first needs a larger `timeoutMs`). */
  async start({ waitUntil = 'ready', timeoutMs = 15_000 }: { waitUntil?: 'ready' | 'alive'; timeoutMs?: number } = {}): Promise<void> {
    const child = spawn(process.execPath, [path.join(repoRoot, 'services', this.name, 'dist', 'index.js')], {
      env: { PATH: process.env.PATH ?? '', ...this.env, PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const append = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let exitCode: number | null | undefined;
    void this.exited.then((code) => (exitCode = code));
    await waitFor(
      async () => {
        if (exitCode !== undefined) throw new Error(`${this.name} exited with ${exitCode}:\n${this.log}`);
        const response = await fetch(`${this.url}/${waitUntil === 'ready' ? 'readyz' : 'healthz'}`);
        return response.ok ? true : undefined;
      },
      { timeoutMs, what: `${this.name} to be ${waitUntil}` },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${this.log}`, { cause: error });
    });
  }

  /** SIGTERM, as an orchestrator would; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child!.kill('SIGTERM');
    return this.exited;
  }

  /** SIGKILL: no chance to flush anything. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
}

export interface Stack {
  /** The first bus process (every bus process serves the same log). */
  bus: ServiceProcess;
  posts: ServiceProcess;
  comments: ServiceProcess;
  /** The first query process. */
  query: ServiceProcess;
  moderation: ServiceProcess;
  /** Every bus process: one on the file log, two or more on JetStream. */
  buses: ServiceProcess[];
  /** Every query process: each has the whole view. */
  queries: ServiceProcess[];
  all: ServiceProcess[];
  /** How the stack is wired, for test names and printed figures. */
  topology: StackTopology;
  /** The JetStream server the stack started (topology `jetstream`), to crash and restart it. */
  nats: NatsServer | undefined;
  /** Stops every process and deletes the data (and a JetStream server it started). */
  destroy(): Promise<void>;
}

export interface StackTopology {
  /** `file`, or the nats:// URL of a JetStream server (`jetstream` starts one for the stack). */
  eventStore: 'file' | 'jetstream' | `nats://${string}`;
  busReplicas: number;
  queryReplicas: number;
}

/**
 * The stack the system suites run on, from the environment: BLOG_STACK_EVENT_STORE (`file`, the
 * default; `jetstream` to start a nats-server per stack; or a nats:// URL such as the one `.ci/run`
 * starts) and BLOG_STACK_REPLICAS (bus and query processes on JetStream; default 2 there, 1 on file).
 */
export function topologyFromEnv(env: NodeJS.ProcessEnv = process.env): StackTopology {
  const eventStore = (env.BLOG_STACK_EVENT_STORE ?? 'file') as StackTopology['eventStore'];
  const replicas = Number(env.BLOG_STACK_REPLICAS ?? (eventStore === 'file' ? 1 : 2));
  return { eventStore, busReplicas: eventStore === 'file' ? 1 : replicas, queryReplicas: replicas };
}

/**
 * The real services on free ports with temporary data dirs, wired like `pnpm start`; on JetStream,
 * with several bus and query processes: the services talk to different bus processes, the other
 * consumers get pushed deliveries through shared durable consumers, and each query process follows
 * the log itself (EVENT_DELIVERY=pull).
 */
export async function startStack(extraEnv: Record<string, string> = {}, topology: StackTopology = topologyFromEnv()): Promise<Stack> {
  const data = await makeTempDir('blog-stack-');
  const nats = topology.eventStore === 'jetstream' ? await NatsServer.start() : undefined;
  const storeUrl = nats ? nats.url : topology.eventStore;
  const busPorts = await Promise.all(Array.from({ length: topology.busReplicas }, () => freePort()));
  const ports = { posts: await freePort(), comments: await freePort(), moderation: await freePort() };
  const busUrl = (replica: number) => `http://127.0.0.1:${busPorts[replica % busPorts.length]}`;
  const common = { LOG_LEVEL: 'warn', EVENT_BUS_SECRET: testBusSecret, ...extraEnv };
  const make = (name: ServiceName, port: number, dir: string, env: Record<string, string> = {}) =>
    new ServiceProcess(name, port, { ...common, DATA_DIR: path.join(data.path, dir), ...env });
  const queryPorts = await Promise.all(Array.from({ length: topology.queryReplicas }, () => freePort()));
  // One query process is pushed to like the others; several each follow the log themselves.
  const queryPulls = topology.queryReplicas > 1;
  const pushedTo: Partial<Record<SubscriberName, number>> = { ...ports, ...(queryPulls ? {} : { query: queryPorts[0]! }) };
  const subscriberList = subscribers.flatMap(({ name, events }) => {
    const port = pushedTo[name];
    return port === undefined ? [] : [`${name}=http://127.0.0.1:${port}${events}`];
  });
  // A unique stream per stack: stacks can share one JetStream server.
  const storeEnv: Record<string, string> = storeUrl === 'file' ? {} : { EVENT_STORE: storeUrl, EVENT_STREAM: `BLOG_${randomBytes(6).toString('hex')}` };
  const buses = busPorts.map((port, replica) =>
    make('event-bus', port, `event-bus-${replica}`, { ...storeEnv, SUBSCRIBERS: subscriberList.join(','), RETRY_MAX_DELAY_MS: '500' }),
  );
  const queries = queryPorts.map((port, replica) =>
    make('query', port, `query-${replica}`, { EVENT_BUS_URL: busUrl(replica), ...(queryPulls ? { EVENT_DELIVERY: 'pull' } : {}) }),
  );
  const stack = {
    bus: buses[0]!,
    posts: make('posts', ports.posts, 'posts', { EVENT_BUS_URL: busUrl(0) }),
    comments: make('comments', ports.comments, 'comments', { EVENT_BUS_URL: busUrl(1) }),
    query: queries[0]!,
    moderation: make('moderation', ports.moderation, 'moderation', { EVENT_BUS_URL: busUrl(1) }),
  };
  const all = [...buses, stack.posts, stack.comments, ...queries, stack.moderation];
  const destroy = async () => {
    await Promise.all(all.map((service) => service.kill()));
    await nats?.destroy();
    await data.remove();
  };
  try {
    // The buses first: on JetStream the first creates the stream the others find.
    for (const bus of buses) await bus.start();
    await Promise.all(all.filter((service) => !buses.includes(service)).map((service) => service.start()));
  } catch (error) {
    await destroy();
    throw error;
  }
  return { ...stack, buses, queries, all, topology, nats, destroy };
}

/** A real event bus process with its own temporary data; no subscribers unless given. */
export async function startEventBus(env: Record<string, string> = {}): Promise<ServiceProcess & { destroy: () => Promise<void> }> {
  const data = await makeTempDir('blog-bus-');
  const bus = new ServiceProcess('event-bus', await freePort(), { LOG_LEVEL: 'warn', SUBSCRIBERS: '', DATA_DIR: data.path, EVENT_BUS_SECRET: testBusSecret, ...env });
  await bus.start();
  return Object.assign(bus, {
    destroy: async () => {
      await bus.kill();
      await data.remove();
    },
  });
}
