/**
 * Fixtures for the big-log figures: an event bus log written straight to disk (so 100,000 events
 * take a second, not a benchmark of their own), and stub subscribers that count what they receive.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeRecord, type BlogEvent } from '@blog/common';

/** Writes `<dataDir>/events.log` as the bus stores it: `<crc32> <envelope json>\n`, seq 1..N. */
export async function writeEventLog(dataDir: string, events: Iterable<BlogEvent>): Promise<number> {
  const lines: string[] = [];
  for (const event of events) lines.push(encodeRecord(JSON.stringify({ id: randomUUID(), seq: lines.length + 1, type: event.type, data: event.data })));
  await mkdir(dataDir, { recursive: true });
  await writeFile(path.join(dataDir, 'events.log'), lines.join(''));
  return lines.length;
}

/** `count` PostCreated events. */
export function* postEvents(count: number): Generator<BlogEvent> {
  for (let i = 0; i < count; i += 1) yield { type: 'PostCreated', data: { id: randomUUID(), title: `Bench post ${i}` } };
}

/**
 * A realistic history of `posts` posts with one comment each, as the services would have written
 * it: PostCreated, CommentCreated (pending), CommentModerated (approved, or rejected when it says
 * "orange"), CommentUpdated (the same verdict, from comments). Four events per post.
 */
export function* blogHistory(posts: number): Generator<BlogEvent> {
  for (let i = 0; i < posts; i += 1) {
    const postId = randomUUID();
    const rejected = i % 10 === 0;
    const comment = { id: randomUUID(), postId, content: rejected ? `I like orange ${i}` : `Nice post ${i}` };
    const verdict = rejected ? 'rejected' : 'approved';
    yield { type: 'PostCreated', data: { id: postId, title: `Bench post ${i}` } };
    yield { type: 'CommentCreated', data: { ...comment, status: 'pending' } };
    yield { type: 'CommentModerated', data: { ...comment, status: verdict } };
    yield { type: 'CommentUpdated', data: { ...comment, status: verdict } };
  }
}

export interface StubSubscriber {
  name: string;
  url: string;
  /** Highest seq received so far. */
  lastSeq: number;
  /** Envelopes received (redeliveries included). */
  received: number;
  requests: number;
  firstReceivedAt: number | undefined;
  /** Resolves with performance.now() once seq `target` has arrived. */
  reached(target: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * A subscriber that accepts one envelope or a JSON array of them, and acknowledges with how far it
 * is; `maxBatch` tells a batching bus it may send arrays of up to 1,000 events.
 */
export async function startStubSubscriber(name: string): Promise<StubSubscriber> {
  const waiters: Array<{ target: number; resolve: (at: number) => void }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const at = performance.now();
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      const envelopes = (Array.isArray(body) ? body : [body]) as Array<{ seq?: unknown }>;
      stub.requests += 1;
      stub.firstReceivedAt ??= at;
      for (const envelope of envelopes) {
        stub.received += 1;
        if (typeof envelope.seq === 'number' && envelope.seq > stub.lastSeq) stub.lastSeq = envelope.seq;
      }
      for (const waiter of waiters.filter((w) => stub.lastSeq >= w.target)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(at);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'applied', lastSeq: stub.lastSeq, maxBatch: 1000 }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const stub: StubSubscriber = {
    name,
    url: `http://127.0.0.1:${port}/events`,
    lastSeq: 0,
    received: 0,
    requests: 0,
    firstReceivedAt: undefined,
    reached: (target) => (stub.lastSeq >= target ? Promise.resolve(performance.now()) : new Promise((resolve) => waiters.push({ target, resolve }))),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return stub;
}
