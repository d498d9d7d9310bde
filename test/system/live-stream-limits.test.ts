import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { PublishRequest } from '@blog/common';
import { deploymentNodeOptions, freePort, makeTempDir, ServiceProcess, signedFetch, startEventBus, testBusSecret, waitFor } from '@blog/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Many idle live streams against the real query process, run with its Deployment's heap cap and the
 * default MAX_LIVE_STREAMS (1,000). The connections read their answer's head and then nothing more,
 * the worst kind of idle reader: whatever is sent to them stays queued.
 *
 * The bounds: query's RSS grows by at most 64 KiB per connection attempted (128 MiB for 2,000),
 * generous for what a stream costs (about 20 kB) yet far below 1 MiB pinned per reader (1,000 MiB
 * for the 1,000 served alone); and another client's GET /posts?limit=20 still answers within a
 * second, where it takes a few milliseconds on an idle machine.
 */

const CONNECTIONS = 2_000;
const MAX_LIVE_STREAMS = 1_000;
const RSS_GROWTH_BOUND_BYTES = CONNECTIONS * 64 * 1024;
const LATENCY_BOUND_MS = 1_000;

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** An idle reader: sends the request, reads the answer's head, then reads nothing more. */
function openIdleStream(port: number): Promise<{ socket: net.Socket; status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let head = '';
    socket.on('error', reject);
    socket.on('data', function onData(chunk: Buffer) {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.pause();
      const lines = head.slice(0, end).split('\r\n');
      const header = (name: string) => lines.find((line) => line.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
      resolve({ socket, status: Number(lines[0]!.split(' ')[1]), retryAfter: header('retry-after') });
    });
    socket.write(`GET /posts/stream?limit=20&frames=changes HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\n\r\n`);
  });
}

describe('GET /posts/stream with 2,000 idle connections', () => {
  let bus: Awaited<ReturnType<typeof startEventBus>>;
  let query: ServiceProcess;
  let queryData: Awaited<ReturnType<typeof makeTempDir>>;
  const sockets: net.Socket[] = [];
  const publish = async (events: PublishRequest[]) => {
    const response = await signedFetch(`${bus.url}/events`, { method: 'POST', body: JSON.stringify(events) });
    if (response.status !== 201) throw new Error(`publishing answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as Array<{ seq: number }>;
  };
  const appliedSeq = async () => Number(/^projection_last_seq\{[^}]*\} (\d+)$/m.exec(await (await fetch(`${query.url}/metrics`)).text())?.[1] ?? 0);

  beforeAll(async () => {
    const port = await freePort();
    bus = await startEventBus({ SUBSCRIBERS: `query=http://127.0.0.1:${port}/events` });
    queryData = await makeTempDir('blog-live-');
    query = new ServiceProcess('query', port, {
      LOG_LEVEL: 'warn',
      DATA_DIR: queryData.path,
      EVENT_BUS_URL: bus.url,
      EVENT_BUS_SECRET: testBusSecret,
      NODE_OPTIONS: deploymentNodeOptions('query'),
    });
    await query.start();
    // A newest page as a reader sees it: 20 posts with a few comments each.
    const events: PublishRequest[] = [];
    for (let post = 0; post < 20; post += 1) {
      events.push({ type: 'PostCreated', data: { id: `idle-${post}`, title: `Post ${post} ${'t'.repeat(80)}` } });
      for (let comment = 0; comment < 3; comment += 1) {
        events.push({ type: 'CommentCreated', data: { id: `idle-${post}-${comment}`, postId: `idle-${post}`, content: 'c'.repeat(400), status: 'pending' } });
      }
    }
    const stored = await publish(events);
    await waitFor(async () => ((await appliedSeq()) >= stored.at(-1)!.seq ? true : undefined), { timeoutMs: 30_000, what: 'query to apply the first page' });
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await query?.kill();
    await queryData?.remove();
    await bus?.destroy();
  });

  it('when 2,000 idle readers connect and changes keep coming, then MAX_LIVE_STREAMS are served, the rest refused with Retry-After, and memory and other clients stay within bounds', async () => {
    // Arrange
    await fetch(`${query.url}/posts?limit=20`).then((response) => response.text());
    const rssBefore = rssOf(query.pid!);

    // Act: connect in groups of 100, each answered before the next group.
    const answers: Array<{ status: number; retryAfter: string | undefined }> = [];
    for (let from = 0; from < CONNECTIONS; from += 100) {
      const group = await Promise.all(Array.from({ length: 100 }, () => openIdleStream(query.port)));
      for (const { socket, status, retryAfter } of group) {
        answers.push({ status, retryAfter });
        // A refused client goes away (and comes back after Retry-After); a served one stays, idle.
        if (status === 200) sockets.push(socket);
        else socket.destroy();
      }
    }
    // Changes every served reader is sent and none of them reads.
    let lastSeq = 0;
    for (let round = 0; round < 20; round += 1) {
      const [stored] = await publish([{ type: 'CommentCreated', data: { id: `idle-new-${round}`, postId: `idle-${round}`, content: 'n'.repeat(1_500), status: 'pending' } }]);
      lastSeq = stored!.seq;
    }
    await waitFor(async () => ((await appliedSeq()) >= lastSeq ? true : undefined), { timeoutMs: 30_000, what: 'query to apply the changes' });
    const latenciesMs: number[] = [];
    for (let request = 0; request < 10; request += 1) {
      const started = performance.now();
      const response = await fetch(`${query.url}/posts?limit=20`, { signal: AbortSignal.timeout(15_000) });
      await response.text();
      latenciesMs.push(performance.now() - started);
    }
    const rssGrowth = rssOf(query.pid!) - rssBefore;

    // Assert
    const served = answers.filter((answer) => answer.status === 200).length;
    const refused = answers.filter((answer) => answer.status === 503);
    expect({ served, refused: refused.length }).toEqual({ served: MAX_LIVE_STREAMS, refused: CONNECTIONS - MAX_LIVE_STREAMS });
    expect(refused.every((answer) => /^\d+$/.test(answer.retryAfter ?? ''))).toBe(true);
    expect(query.running).toBe(true);
    expect(rssGrowth, `RSS grew by ${(rssGrowth / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(RSS_GROWTH_BOUND_BYTES);
    expect(Math.max(...latenciesMs), `GET /posts?limit=20 took ${latenciesMs.map((ms) => ms.toFixed(1)).join(', ')} ms`).toBeLessThan(LATENCY_BOUND_MS);
  });
});
