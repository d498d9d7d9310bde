import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { freePort, makeTempDir, waitFor } from './wait.js';

/** Debian's `nats-server` package (`.ci/run` installs it); NATS_SERVER points elsewhere. */
export const natsServerPath = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';
export const natsServerAvailable = (): boolean => existsSync(natsServerPath);

/** A real single-node JetStream server on 127.0.0.1 with its own store, restartable on the same port and data. */
export class NatsServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(
    readonly port: number,
    private readonly storeDir: { path: string; remove: () => Promise<void> },
  ) {}

  static async start(): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), await makeTempDir('blog-nats-'));
    await server.start();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(natsServerPath, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir.path], { stdio: ['ignore', 'pipe', 'pipe'] });
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
