import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { freePort, makeTempDir, waitFor } from './wait.js';

/** Debian's `nats-server` package (`.ci/run` installs it); NATS_SERVER points elsewhere. */
export const natsServerPath = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';
export const natsServerAvailable = (): boolean => existsSync(natsServerPath);

export interface NatsServerOptions {
  /**
   * A nats-server configuration (the text of a nats.conf, such as a profile's users and
   * permissions). The port, the address, JetStream and its store directory always come from the
   * command line, which overrides what the file says about them.
   */
  config?: string;
  /** Variables the configuration refers to (`password: $NAME`), set for the server only. */
  env?: Record<string, string>;
}

/** A real single-node JetStream server on 127.0.0.1 with its own store, restartable on the same port and data. */
export class NatsServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(
    readonly port: number,
    private readonly storeDir: { path: string; remove: () => Promise<void> },
    private readonly options: NatsServerOptions,
  ) {}

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), await makeTempDir('blog-nats-'), options);
    await server.start();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** What the server printed (the tail), for failure messages. */
  log(): string {
    return this.output;
  }

  async start(): Promise<void> {
    const args = ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir.path];
    if (this.options.config !== undefined) {
      const file = path.join(this.storeDir.path, 'nats.conf');
      await writeFile(file, this.options.config);
      args.unshift('-c', file);
    }
    const child = spawn(natsServerPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.options.env } });
    this.child = child;
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-10_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(() => (child.exitCode === null ? canConnect(this.port) : Promise.reject(new Error(`nats-server exited:\n${this.output}`))), { timeoutMs: 10_000, what: `nats-server on ${this.port}` });
  }

  /** SIGKILL, as a crash would. */
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  async destroy(): Promise<void> {
    await this.kill();
    await this.storeDir.remove();
  }
}

function canConnect(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(undefined));
  });
}
