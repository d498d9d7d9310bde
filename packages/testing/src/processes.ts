import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, makeTempDir, waitFor } from './wait.js';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The secret the test stacks share (EVENT_BUS_SECRET): deliveries and publishes are signed with it. */
export const testBusSecret = randomBytes(32).toString('hex');

export type ServiceName = 'event-bus' | 'posts' | 'comments' | 'query' | 'moderation';
export const consumerNames = ['posts', 'comments', 'query', 'moderation'] as const;

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

  async start({ waitUntil = 'ready' }: { waitUntil?: 'ready' | 'alive' } = {}): Promise<void> {
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
      { timeoutMs: 15_000, what: `${this.name} to be ${waitUntil}` },
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
  bus: ServiceProcess;
  posts: ServiceProcess;
  comments: ServiceProcess;
  query: ServiceProcess;
  moderation: ServiceProcess;
  all: ServiceProcess[];
  /** Stops every process and deletes the data. */
  destroy(): Promise<void>;
}

/** The five real services on free ports with temporary data dirs, wired like `pnpm start`. */
export async function startStack(extraEnv: Record<string, string> = {}): Promise<Stack> {
  const data = await makeTempDir('blog-stack-');
  const ports = { bus: await freePort(), posts: await freePort(), comments: await freePort(), query: await freePort(), moderation: await freePort() };
  const common = { LOG_LEVEL: 'warn', EVENT_BUS_URL: `http://127.0.0.1:${ports.bus}`, EVENT_BUS_SECRET: testBusSecret, ...extraEnv };
  const make = (name: ServiceName, port: number, env: Record<string, string> = {}) =>
    new ServiceProcess(name, port, { ...common, DATA_DIR: path.join(data.path, name), ...env });
  const subscribers = consumerNames.map((name) => `${name}=http://127.0.0.1:${ports[name]}/events`).join(',');
  const stack = {
    bus: make('event-bus', ports.bus, { SUBSCRIBERS: subscribers, RETRY_MAX_DELAY_MS: '500' }),
    posts: make('posts', ports.posts),
    comments: make('comments', ports.comments),
    query: make('query', ports.query),
    moderation: make('moderation', ports.moderation),
  };
  const all = [stack.bus, stack.posts, stack.comments, stack.query, stack.moderation];
  const destroy = async () => {
    await Promise.all(all.map((service) => service.kill()));
    await data.remove();
  };
  try {
    await Promise.all(all.map((service) => service.start()));
  } catch (error) {
    await destroy();
    throw error;
  }
  return { ...stack, all, destroy };
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
