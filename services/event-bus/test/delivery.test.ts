import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, createMetricsRegistry, logIdHeader, type EventEnvelope } from '@blog/common';
import { makeTempDir, waitFor } from '@blog/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Delivery } from '../src/delivery.js';
import { EventLog } from '../src/event-log.js';

const logger = createLogger('delivery-test', 'silent');

/**
 * Answers held until the test releases them: a subscriber that stays busy for exactly as long as a
 * test needs, so that "while it was still busy" is a fact of the run, not a guess about timing.
 */
function gate(): { until: Promise<void>; release: () => void } {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { until: promise, release: () => resolve() };
}

type Behaviour = { status: number; delayMs?: number; body?: unknown; until?: Promise<void> };

/** A real HTTP subscriber whose behaviour a test sets per request. */
async function startSubscriber(behave: (event: EventEnvelope, attempt: number) => Behaviour = () => ({ status: 200 })) {
  const received: EventEnvelope[] = [];
  const logIds: unknown[] = [];
  let attempts = 0;
  const server = http.createServer((req, res) => {
    logIds.push(req.headers[logIdHeader]);
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as EventEnvelope;
      attempts += 1;
      const { status, delayMs = 0, body: answer, until = Promise.resolve() } = behave(event, attempts);
      void until.then(() =>
        setTimeout(() => {
          if (status >= 200 && status < 300) received.push(event);
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer ?? { ok: true }));
        }, delayMs),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  return {
    url,
    received,
    logIds,
    attempts: () => attempts,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('Delivery', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let log: EventLog;
  const running: Array<{ stop: () => Promise<unknown> }> = [];

  beforeEach(async () => {
    dir = await makeTempDir();
    log = await EventLog.open(dir.path, logger);
  });
  afterEach(async () => {
    for (const item of running.splice(0).reverse()) await item.stop();
    await log.close();
    await dir.remove();
  });

  function startDelivery(subscribers: Array<{ name: string; url: string }>, options: { timeoutMs?: number } = {}) {
    const cursors = log.cursors(subscribers.map((s) => s.name));
    const delivery = new Delivery({
      store: log,
      cursors,
      subscribers,
      logger,
      metrics: createMetricsRegistry('event-bus'),
      timeoutMs: options.timeoutMs ?? 2_000,
      retryMaxDelayMs: 200,
      cursorFlushMs: 20,
    });
    delivery.start();
    running.push(delivery);
    return { delivery, cursors };
  }

  const publish = (n: number) => log.appendAll([{ type: 'PostCreated', data: { id: `p${n}`, title: `post ${n}` } }]);

  it('when events are published, then each subscriber gets all of them once, in log order', async () => {
    const a = await startSubscriber();
    const b = await startSubscriber();
    running.push({ stop: a.close }, { stop: b.close });
    startDelivery([{ name: 'a', url: a.url }, { name: 'b', url: b.url }]);

    for (let n = 1; n <= 20; n += 1) await publish(n);

    await waitFor(() => (a.received.length === 20 && b.received.length === 20 ? true : undefined), { what: 'both subscribers to get 20 events' });
    expect(a.received.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(b.received.map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, i) => ({ id: `p${i + 1}`, title: `post ${i + 1}` })));
  });

  it('when events are delivered, then every request names the log they come from (x-log-id)', async () => {
    const subscriber = await startSubscriber();
    running.push({ stop: subscriber.close });
    startDelivery([{ name: 's', url: subscriber.url }]);

    for (let n = 1; n <= 3; n += 1) await publish(n);

    await waitFor(() => (subscriber.received.length === 3 ? true : undefined), { what: 'three deliveries' });
    expect(subscriber.logIds).toEqual([log.logId, log.logId, log.logId]);
  });

  it('when a subscriber fails, then it is retried until it succeeds, without losing order', async () => {
    const flaky = await startSubscriber((_event, attempt) => ({ status: attempt <= 3 ? 500 : 200 }));
    running.push({ stop: flaky.close });
    startDelivery([{ name: 'flaky', url: flaky.url }]);

    for (let n = 1; n <= 3; n += 1) await publish(n);

    await waitFor(() => (flaky.received.length === 3 ? true : undefined), { what: 'the flaky subscriber to catch up' });
    expect(flaky.received.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(flaky.attempts()).toBe(6);
  });

  it('when one subscriber is busy and another is down, then a healthy one gets every event meanwhile', async () => {
    const busy = gate();
    const slow = await startSubscriber(() => ({ status: 200, until: busy.until }));
    const healthy = await startSubscriber();
    running.push({ stop: slow.close }, { stop: healthy.close });
    // Long enough that the busy subscriber's first delivery is still the one in flight at the end.
    startDelivery(
      [
        { name: 'slow', url: slow.url },
        { name: 'down', url: 'http://127.0.0.1:9/events' },
        { name: 'healthy', url: healthy.url },
      ],
      { timeoutMs: 60_000 },
    );
    running.push({ stop: () => Promise.resolve(busy.release()) });

    for (let n = 1; n <= 10; n += 1) await publish(n);
    await waitFor(() => (healthy.received.length === 10 && slow.attempts() === 1 ? true : undefined), { what: 'the healthy subscriber to get all ten while the busy one has its first' });

    expect(healthy.received.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect({ attempts: slow.attempts(), answered: slow.received.length }).toEqual({ attempts: 1, answered: 0 });

    busy.release();
    await waitFor(() => (slow.received.length === 10 ? true : undefined), { what: 'the busy subscriber to catch up once it answers' });
    expect(slow.received.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it('when subscribers share one host and port (a gateway), then two busy ones do not hold up a third', async () => {
    // One server, three paths: a per-origin connection pool would be shared by all three.
    const busy = gate();
    const paths = ['/slow-1', '/slow-2', '/fast'] as const;
    const arrived = Object.fromEntries(paths.map((path) => [path, [] as number[]]));
    const answered = Object.fromEntries(paths.map((path) => [path, [] as number[]]));
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const path = req.url!;
        const { seq } = JSON.parse(body) as EventEnvelope;
        arrived[path]!.push(seq);
        const answer = () => {
          answered[path]!.push(seq);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        };
        if (path === '/fast') answer();
        else void busy.until.then(answer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    running.push({ stop: () => (server.closeAllConnections(), new Promise((resolve) => server.close(resolve))) });
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    startDelivery(
      paths.map((path) => ({ name: path.slice(1), url: `${origin}${path}` })),
      { timeoutMs: 60_000 },
    );
    running.push({ stop: () => Promise.resolve(busy.release()) });

    for (let n = 1; n <= 5; n += 1) await publish(n);
    await waitFor(() => (answered['/fast']!.length === 5 && arrived['/slow-1']!.length === 1 && arrived['/slow-2']!.length === 1 ? true : undefined), {
      what: 'the fast subscriber to get all five while each busy one has its first',
    });

    expect({ arrived, answered }).toEqual({
      arrived: { '/slow-1': [1], '/slow-2': [1], '/fast': [1, 2, 3, 4, 5] },
      answered: { '/slow-1': [], '/slow-2': [], '/fast': [1, 2, 3, 4, 5] },
    });

    busy.release();
    await waitFor(() => (answered['/slow-1']!.length === 5 && answered['/slow-2']!.length === 5 ? true : undefined), { what: 'the busy subscribers to catch up once they answer' });
    expect(answered).toEqual({ '/slow-1': [1, 2, 3, 4, 5], '/slow-2': [1, 2, 3, 4, 5], '/fast': [1, 2, 3, 4, 5] });
  });

  it('when a subscriber does not answer in time, then the delivery times out and is retried', async () => {
    const hanging = await startSubscriber((_event, attempt) => ({ status: 200, delayMs: attempt === 1 ? 3_000 : 0 }));
    running.push({ stop: hanging.close });
    startDelivery([{ name: 'hanging', url: hanging.url }], { timeoutMs: 200 });

    await publish(1);

    await waitFor(() => (hanging.attempts() >= 2 && hanging.received.some((e) => e.seq === 1) ? true : undefined), { what: 'a retry after the timeout' });
  });

  it('when the bus restarts, then each subscriber resumes from its saved cursor', async () => {
    const subscriber = await startSubscriber();
    running.push({ stop: subscriber.close });
    const first = startDelivery([{ name: 's', url: subscriber.url }]);
    for (let n = 1; n <= 5; n += 1) await publish(n);
    await waitFor(() => (subscriber.received.length === 5 ? true : undefined));
    await first.delivery.stop();
    running.splice(running.indexOf(first.delivery), 1);

    for (let n = 6; n <= 8; n += 1) await publish(n);
    startDelivery([{ name: 's', url: subscriber.url }]);

    await waitFor(() => (subscriber.received.length === 8 ? true : undefined), { what: 'events 6-8' });
    expect(subscriber.received.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('when a subscriber acknowledges that it already has later events, then those are skipped', async () => {
    for (let n = 1; n <= 10; n += 1) await publish(n);
    const caughtUp = await startSubscriber(() => ({ status: 200, body: { status: 'duplicate', lastSeq: 10 } }));
    running.push({ stop: caughtUp.close });

    const { cursors } = startDelivery([{ name: 'caught-up', url: caughtUp.url }]);

    await waitFor(() => (cursors.get('caught-up') === 10 ? true : undefined), { what: 'the cursor to jump to 10' });
    expect(caughtUp.received.map((e) => e.seq)).toEqual([1]);
  });
});
