/**
 * Fixtures for the big-log figures: the events that fill a bus's log (published through the bus
 * itself, as the services would), and stub subscribers that count what they receive.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { derivedEventId, type PublishRequest } from '@blog/common';

/** `count` PostCreated events. */
export function* postEvents(count: number): Generator<PublishRequest> {
  for (let i = 0; i < count; i += 1) yield { type: 'PostCreated', data: { id: randomUUID(), title: `Bench post ${i}` } };
}

/**
 * A realistic history of `posts` posts with one comment each, as the services would have written
 * it: PostCreated, CommentCreated (pending), CommentModerated (approved, or rejected when it says
 * "orange"), CommentUpdated (the same verdict, from comments). Four events per post, in that order.
 * Every event carries an id (a reaction the one moderation or comments derives from its cause), so
 * the bus looks each one up as it would a retry, and the log could feed those services as well.
 */
export function* blogHistory(posts: number): Generator<PublishRequest> {
  for (let i = 0; i < posts; i += 1) {
    const postId = randomUUID();
    const rejected = i % 10 === 0;
    const comment = { id: randomUUID(), postId, content: rejected ? `I like orange ${i}` : `Nice post ${i}` };
    const verdict = rejected ? 'rejected' : 'approved';
    const createdId = randomUUID();
    const moderatedId = derivedEventId(createdId, 'comment-moderated');
    yield { id: randomUUID(), type: 'PostCreated', data: { id: postId, title: `Bench post ${i}` } };
    yield { id: createdId, type: 'CommentCreated', data: { ...comment, status: 'pending' } };
    yield { id: moderatedId, type: 'CommentModerated', data: { ...comment, status: verdict } };
    yield { id: derivedEventId(moderatedId, 'comment-updated'), type: 'CommentUpdated', data: { ...comment, status: verdict } };
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
