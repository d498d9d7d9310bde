/**
 * `pnpm bench`: measures the figures of the performance issue against the built services, each
 * running as its own process on 127.0.0.1, and writes bench/results/latest.{md,json}.
 *
 * A missed target is reported, not fatal (exit code 0); a figure that cannot be measured at all
 * is an error (exit code 1). Every process and temporary directory is removed on the way out.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { PostsView } from '@blog/common';
import { freePort, makeTempDir, ServiceProcess, startStack, testBusSecret, type Stack } from '@blog/testing';
import { blogHistory, postEvents, startStubSubscriber, writeEventLog } from './fixtures.ts';
import { machineInfo, peakMemoryMb, renderMarkdown, row, summarize, type Report, type Row } from './figures.ts';
import { closedLoop, createAgent, LiveStreamWatcher, openLoop, postJson } from './load.ts';

const settings = {
  createPosts: 2_000,
  warmUpPosts: 200,
  connections: 16,
  readSeconds: 5,
  rate: 500,
  openLoopSeconds: 5,
  /** How long after the last answer a post or verdict may still show up on the stream. */
  settleTimeoutMs: 10_000,
  fanOutEvents: 100_000,
  fanOutSubscribers: 4,
  fanOutTimeoutMs: 40_000,
  restartPosts: 25_000, // x4 events each = 100,000
  catchUpTimeoutMs: 40_000,
  /** A hard stop; the per-figure bounds above keep a slow run well inside it. */
  wholeRunTimeoutMs: 180_000,
};

const targets = {
  createThroughput: { kind: 'min', value: 3_000 },
  createP99: { kind: 'max', value: 25 },
  readThroughput: { kind: 'min', value: 3_000 },
  propagationP99: { kind: 'max', value: 10 },
  moderationP99: { kind: 'max', value: 20 },
  restartMs: { kind: 'max', value: 1_000 },
  peakMemoryMb: { kind: 'max', value: 80 },
} as const;

const durability =
  'on: a 201 from posts or comments comes only after the bus has fdatasync-ed the event (group commit), so these figures include the disk flushes of the log. Each service\'s own journal is fdatasync-ed every 200 ms (a restart re-pulls anything newer from the bus).';

/** How each figure is measured, printed under the table. */
const methods = [
  `1: autocannon (closed loop) POST /posts/create on posts, ${settings.connections} connections, ${settings.warmUpPosts} warm-up posts not counted, then ${settings.createPosts.toLocaleString('en-US')}; throughput = 201s / wall time, latency per request.`,
  `2: autocannon GET /posts on query, ${settings.connections} connections for ${settings.readSeconds} s, once query shows every post of figure 1.`,
  `3: open loop (request i sent at i/${settings.rate} s, whatever the answers do) POST /posts/create for ${settings.openLoopSeconds} s; one /posts/stream connection opened before; latency = first \`post\` frame with the id − arrival of its 201 (a post already on the stream before its 201 counts as 0 ms).`,
  `4: the same open loop, POST /posts/:id/comments on existing posts (every tenth says "orange"); latency = first frame showing the comment approved/rejected − its 201; verdicts checked.`,
  `5: ${settings.fanOutEvents.toLocaleString('en-US')} PostCreated events written to a bus's events.log before it starts, ${settings.fanOutSubscribers} stub subscribers (in the bench process) acking with lastSeq and maxBatch 1000; time from bus ready (or its first delivery, if earlier) until each stub has the last seq.`,
  `6: a bus log of ${(settings.restartPosts * 4).toLocaleString('en-US')} events (${settings.restartPosts.toLocaleString('en-US')} posts, each with a comment created, moderated and updated); query catches up, is stopped with SIGTERM (writes its snapshot), and is started again: spawn → first /readyz 200 (polled every 5 ms).`,
  '7: VmHWM from /proc/<pid>/status of each service process, read at the end of its figures.',
];

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
const started = performance.now();
const rows: Row[] = [];
const errors: Report['errors'] = [];
const details: Record<string, unknown> = {};

// ---- cleanup: everything started is registered here and undone in reverse, even on error ----

type Undo = () => Promise<unknown> | void;
const cleanups: Undo[] = [];

const runUndo = (undo: Undo) => Promise.resolve().then(undo).catch((error: unknown) => log(`cleanup failed: ${String(error)}`));

/** Registers `undo`; returns a function that runs it now (once) instead of at exit. */
function onCleanup(undo: Undo): () => Promise<void> {
  cleanups.push(undo);
  return async () => {
    const index = cleanups.indexOf(undo);
    if (index === -1) return;
    cleanups.splice(index, 1);
    await runUndo(undo);
  };
}

let cleaning: Promise<void> | undefined;

/** Undoes everything registered, newest first; concurrent callers share one pass. */
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) await runUndo(cleanups.pop()!);
  })().finally(() => (cleaning = undefined));
  return cleaning;
}

/** Set on SIGINT, SIGTERM or the whole-run timeout: no new figure starts. */
let aborting = false;

function log(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
}

/** Runs one figure; a failure is recorded and the bench goes on with the next one. */
async function figure(name: string, measure: () => Promise<void>): Promise<void> {
  if (aborting) return;
  log(`${name}...`);
  try {
    await measure();
  } catch (error) {
    if (aborting) return; // the processes were stopped under it: not a result
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    log(`${name} FAILED: ${message}`);
    errors.push({ figure: name, message });
  }
}

/** Polls until `probe` is true; false on timeout (the caller reports what it got). */
async function waitUntil(probe: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return true;
    } catch {
      // not yet
    }
    if (performance.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return (await response.json()) as T;
}

const countPosts = async (query: ServiceProcess) => Object.keys(await getJson<PostsView>(`${query.url}/posts`)).length;

// ---- figures 1-4 and the memory of the main stack ----

async function mainStack(): Promise<void> {
  log('starting the stack (event-bus, posts, comments, query, moderation)');
  const starting = startStack({ LOG_LEVEL: 'warn' });
  // Registered before it is up, so an interrupt during the start still stops it (a failed start cleans up itself).
  const stopStack = onCleanup(() => starting.then((stack) => stack.destroy(), () => undefined));
  const stack = await starting;
  const atStartMb = new Map(stack.all.map((service) => [service.name, peakMemoryMb(service.pid)]));
  const agent = createAgent();
  onCleanup(() => agent.destroy());
  try {
    const created = await createPosts(stack);
    await readPosts(stack, created);
    const watcher = new LiveStreamWatcher(`${stack.query.url}/posts/stream`);
    onCleanup(() => watcher.close());
    await watcher.ready;
    await figure('3. Propagation', () => propagation(stack, watcher, agent));
    await figure('4. Moderation', () => moderation(stack, watcher, agent));
    details.liveStreamFrames = watcher.frames;
  } finally {
    // Read even when a figure failed: the memory of what did run is still a result.
    for (const service of stack.all) {
      const atStart = atStartMb.get(service.name);
      const note = atStart === undefined ? undefined : `${atStart.toFixed(0)} MB right after start`;
      rows.push(row('7. Peak memory (VmHWM)', `${service.name} after figures 1–4`, peakMemoryMb(service.pid), 'MB', targets.peakMemoryMb, note));
    }
    await stopStack();
  }
}

async function createPosts(stack: Stack): Promise<number> {
  let created = 0;
  await figure('1. Create post', async () => {
    const url = `${stack.posts.url}/posts/create`;
    const warmUp = await closedLoop({ url, method: 'POST', connections: settings.connections, amount: settings.warmUpPosts, body: (i) => ({ title: `Warm-up post ${i}` }) });
    const result = await closedLoop({ url, method: 'POST', connections: settings.connections, amount: settings.createPosts, body: (i) => ({ title: `Bench post ${i}` }) });
    created = warmUp.ok + result.ok;
    details.createPost = { warmUp, measured: result };
    const figureName = `1. Create post (c${settings.connections}, ${settings.createPosts.toLocaleString('en-US')} posts)`;
    const note = result.failed > 0 ? `${result.failed} failed` : undefined;
    rows.push(row(figureName, 'throughput', result.throughput, '/s', targets.createThroughput, note));
    rows.push(row(figureName, 'p50 latency', result.latency.p50, 'ms'));
    rows.push(row(figureName, 'p99 latency', result.latency.p99, 'ms', targets.createP99));
  });
  return created;
}

async function readPosts(stack: Stack, expected: number): Promise<void> {
  await figure('2. GET /posts on query', async () => {
    const caughtUp = await waitUntil(async () => (await countPosts(stack.query)) >= expected, 20_000, 100);
    const stored = await countPosts(stack.query);
    if (!caughtUp) log(`query has ${stored} of ${expected} posts after 20 s; measuring anyway`);
    const result = await closedLoop({ url: `${stack.query.url}/posts`, method: 'GET', connections: settings.connections, durationSeconds: settings.readSeconds });
    details.readPosts = { postsStored: stored, ...result };
    const figureName = `2. GET /posts on query (${stored.toLocaleString('en-US')} posts, c${settings.connections}, ${settings.readSeconds} s)`;
    rows.push(row(figureName, 'throughput', result.throughput, '/s', targets.readThroughput, result.failed > 0 ? `${result.failed} failed` : undefined));
    rows.push(row(figureName, 'p50 latency', result.latency.p50, 'ms'));
    rows.push(row(figureName, 'p99 latency', result.latency.p99, 'ms'));
  });
}

/** Open-loop POSTs; returns what answered 201 (id → time of the answer) and the load's numbers. */
async function openLoopCreate(
  label: string,
  makeRequest: (index: number) => { url: string; body: unknown; idOf: (body: unknown) => string | undefined },
  agent: ReturnType<typeof createAgent>,
) {
  const answered = new Map<string, number>();
  const latencies: number[] = [];
  let failed = 0;
  const load = await openLoop(settings.rate, settings.openLoopSeconds, async (index) => {
    const { url, body, idOf } = makeRequest(index);
    try {
      const response = await postJson(agent, url, body);
      const id = response.status === 201 ? idOf(response.body) : undefined;
      if (id === undefined) failed += 1;
      else {
        answered.set(id, response.respondedAt);
        latencies.push(response.latencyMs);
      }
    } catch {
      failed += 1;
    }
  });
  log(`${label}: sent ${load.sent} at ${load.sendRate.toFixed(0)}/s (max scheduling lag ${load.maxLagMs.toFixed(1)} ms), ${answered.size} × 201, ${failed} failed`);
  return { answered, failed, load, requestLatency: summarize(latencies) };
}

/** Time from each 201 until `seenAt` has the id; negative (seen before the 201) counts as 0. */
function visibilityLatencies(answered: Map<string, number>, seenAt: (id: string) => number | undefined) {
  const latencies: number[] = [];
  let beforeAnswer = 0;
  for (const [id, respondedAt] of answered) {
    const seen = seenAt(id);
    if (seen === undefined) continue;
    if (seen < respondedAt) beforeAnswer += 1;
    latencies.push(Math.max(0, seen - respondedAt));
  }
  return { latency: summarize(latencies), seen: latencies.length, beforeAnswer };
}

async function propagation(stack: Stack, watcher: LiveStreamWatcher, agent: ReturnType<typeof createAgent>): Promise<void> {
  const { answered, failed, load, requestLatency } = await openLoopCreate(
    'propagation load',
    (i) => ({ url: `${stack.posts.url}/posts/create`, body: { title: `Live post ${i}` }, idOf: (body) => (body as { id?: string }).id }),
    agent,
  );
  await waitUntil(() => [...answered.keys()].every((id) => watcher.postSeenAt.has(id)), settings.settleTimeoutMs);
  const result = visibilityLatencies(answered, (id) => watcher.postSeenAt.get(id));
  details.propagation = { ...result, sent: load.sent, answered: answered.size, failed, load, requestLatency };
  const figureName = `3. Propagation 201 → /posts/stream (${settings.rate}/s for ${settings.openLoopSeconds} s)`;
  const seenNote = `${result.seen}/${load.sent} seen, ${result.beforeAnswer} before their 201, generator lag ≤ ${load.maxLagMs.toFixed(0)} ms`;
  rows.push(row(figureName, 'p50', result.latency.p50, 'ms', undefined, seenNote));
  rows.push(row(figureName, 'p99', result.latency.p99, 'ms', targets.propagationP99, result.seen < load.sent ? `only ${result.seen}/${load.sent} seen` : undefined));
  rows.push(row(figureName, 'create p99 under this load', requestLatency.p99, 'ms'));
}

async function moderation(stack: Stack, watcher: LiveStreamWatcher, agent: ReturnType<typeof createAgent>): Promise<void> {
  const postIds = Object.keys(await getJson<PostsView>(`${stack.query.url}/posts`));
  if (postIds.length === 0) throw new Error('no posts to comment on');
  const expected = new Map<string, string>();
  const { answered, failed, load, requestLatency } = await openLoopCreate(
    'moderation load',
    (i) => {
      // Every tenth comment says "orange": moderation rejects those, approves the rest.
      const content = i % 10 === 0 ? `Bench comment ${i} about an orange` : `Bench comment ${i}`;
      return {
        url: `${stack.comments.url}/posts/${postIds[i % postIds.length]!}/comments`,
        body: { content },
        idOf: (body) => {
          const id = (body as Array<{ id: string; content: string }>).find((comment) => comment.content === content)?.id;
          if (id !== undefined) expected.set(id, i % 10 === 0 ? 'rejected' : 'approved');
          return id;
        },
      };
    },
    agent,
  );
  await waitUntil(() => [...answered.keys()].every((id) => watcher.commentSettledAt.has(id)), settings.settleTimeoutMs);
  const result = visibilityLatencies(answered, (id) => watcher.commentSettledAt.get(id)?.at);
  const wrongVerdicts = [...answered.keys()].filter((id) => {
    const settled = watcher.commentSettledAt.get(id);
    return settled !== undefined && settled.status !== expected.get(id);
  }).length;
  details.moderation = { ...result, sent: load.sent, answered: answered.size, failed, wrongVerdicts, load, requestLatency };
  const figureName = `4. Moderation 201 → final status on stream (${settings.rate}/s for ${settings.openLoopSeconds} s)`;
  const seenNote = `${result.seen}/${load.sent} settled${wrongVerdicts > 0 ? `, ${wrongVerdicts} WRONG verdicts` : ''}, ${result.beforeAnswer} before their 201, generator lag ≤ ${load.maxLagMs.toFixed(0)} ms`;
  rows.push(row(figureName, 'p50', result.latency.p50, 'ms', undefined, seenNote));
  rows.push(row(figureName, 'p99', result.latency.p99, 'ms', targets.moderationP99, result.seen < load.sent ? `only ${result.seen}/${load.sent} settled` : undefined));
  rows.push(row(figureName, 'comment p99 under this load', requestLatency.p99, 'ms'));
}

// ---- figure 5: bus fan-out to four stub subscribers ----

async function fanOut(): Promise<void> {
  const events = settings.fanOutEvents;
  const data = await makeTempDir('blog-bench-fanout-');
  onCleanup(() => data.remove());
  await writeEventLog(data.path, postEvents(events));
  const stubs = await Promise.all(Array.from({ length: settings.fanOutSubscribers }, (_, i) => startStubSubscriber(`stub${i + 1}`)));
  for (const stub of stubs) onCleanup(() => stub.close());
  const bus = new ServiceProcess('event-bus', await freePort(), {
    LOG_LEVEL: 'warn',
    DATA_DIR: data.path,
    EVENT_BUS_SECRET: testBusSecret,
    SUBSCRIBERS: stubs.map((stub) => `${stub.name}=${stub.url}`).join(','),
  });
  const stopBus = onCleanup(() => bus.kill());
  const spawnedAt = performance.now();
  await bus.start();
  // Delivery starts just before the bus reports ready; whichever we notice first is "ready".
  const readyAt = Math.min(performance.now(), ...stubs.map((stub) => stub.firstReceivedAt ?? Number.POSITIVE_INFINITY));
  const deadline = sleep(settings.fanOutTimeoutMs).then(() => undefined);
  const doneAt = await Promise.all(stubs.map((stub) => Promise.race([stub.reached(events), deadline])));
  const figureName = `5. Bus fan-out (${events.toLocaleString('en-US')} events, ${stubs.length} subscribers)`;
  const perSubscriber = stubs.map((stub, i) => {
    const at = doneAt[i];
    const seconds = ((at ?? performance.now()) - readyAt) / 1000;
    return { name: stub.name, seconds, eventsPerSecond: (at === undefined ? stub.lastSeq : events) / seconds, lastSeq: stub.lastSeq, received: stub.received, requests: stub.requests, done: at !== undefined };
  });
  const busPeak = peakMemoryMb(bus.pid);
  details.fanOut = { events, busStartMs: readyAt - spawnedAt, subscribers: perSubscriber };
  rows.push(row(figureName, 'bus start with the log (spawn → ready)', readyAt - spawnedAt, 'ms'));
  for (const s of perSubscriber) {
    const note = s.done ? `${s.seconds.toFixed(2)} s, ${Math.round(s.received / s.requests)} events/request` : `TIMED OUT at seq ${s.lastSeq}`;
    rows.push(row(figureName, `events/s to ${s.name}`, s.eventsPerSecond, '/s', undefined, note));
  }
  rows.push(row('7. Peak memory (VmHWM)', 'event-bus in figure 5', busPeak, 'MB', targets.peakMemoryMb));
  await stopBus();
}

// ---- figure 6: query restart after 100,000 events ----

async function queryRestart(): Promise<void> {
  const busData = await makeTempDir('blog-bench-restart-bus-');
  onCleanup(() => busData.remove());
  const queryData = await makeTempDir('blog-bench-restart-query-');
  onCleanup(() => queryData.remove());
  const events = await writeEventLog(busData.path, blogHistory(settings.restartPosts));
  const queryPort = await freePort();
  const bus = new ServiceProcess('event-bus', await freePort(), {
    LOG_LEVEL: 'warn',
    DATA_DIR: busData.path,
    EVENT_BUS_SECRET: testBusSecret,
    SUBSCRIBERS: `query=http://127.0.0.1:${queryPort}/events`,
    RETRY_MAX_DELAY_MS: '500',
  });
  const stopBus = onCleanup(() => bus.kill());
  const query = new ServiceProcess('query', queryPort, { LOG_LEVEL: 'warn', DATA_DIR: queryData.path, EVENT_BUS_URL: bus.url, EVENT_BUS_SECRET: testBusSecret });
  const stopQuery = onCleanup(() => query.kill());
  await bus.start();

  // First start: catch up with all 100,000 events from the bus.
  const firstStart = performance.now();
  await query.start({ waitUntil: 'alive' });
  const caughtUp = await waitUntil(async () => {
    const view = await getJson<PostsView>(`${query.url}/posts`);
    const posts = Object.values(view);
    return posts.length === settings.restartPosts && posts.every((post) => post.comments.length === 1 && post.comments[0]!.status !== 'pending');
  }, settings.catchUpTimeoutMs, 200);
  const catchUpMs = performance.now() - firstStart;
  if (!caughtUp) throw new Error(`query did not catch up with ${events} events within ${settings.catchUpTimeoutMs / 1000} s`);
  const firstPeak = peakMemoryMb(query.pid);
  log(`query caught up with ${events} events in ${(catchUpMs / 1000).toFixed(1)} s; stopping it with SIGTERM`);

  const exitCode = await query.stop();
  if (exitCode !== 0) throw new Error(`query exited with ${exitCode} on SIGTERM:\n${query.output().slice(-2_000)}`);
  const snapshotWritten = existsSync(path.join(queryData.path, 'snapshot.json'));

  // Restart: wall time from spawn to the first /readyz 200, polled every 5 ms next to start()'s own wait.
  const spawnedAt = performance.now();
  let readyAt: number | undefined;
  const starting = query.start();
  const polling = (async () => {
    while (readyAt === undefined && performance.now() - spawnedAt < 20_000) {
      try {
        const response = await fetch(`${query.url}/readyz`);
        await response.arrayBuffer();
        if (response.ok) readyAt = performance.now();
      } catch {
        // not listening yet
      }
      if (readyAt === undefined) await sleep(5);
    }
  })();
  await starting;
  const startResolvedAt = performance.now();
  await polling;
  const restartMs = Math.min(readyAt ?? startResolvedAt, startResolvedAt) - spawnedAt;
  const postsAfter = await countPosts(query);
  const restartedPeak = peakMemoryMb(query.pid);
  const busPeak = peakMemoryMb(bus.pid);

  details.queryRestart = { events, posts: settings.restartPosts, catchUpMs, snapshotWritten, restartMs, postsAfterRestart: postsAfter };
  const figureName = `6. Query restart after ${events.toLocaleString('en-US')} events`;
  const note = [snapshotWritten ? 'from snapshot' : 'NO snapshot written', postsAfter === settings.restartPosts ? `${postsAfter.toLocaleString('en-US')} posts back` : `only ${postsAfter} posts back`].join(', ');
  rows.push(row(figureName, 'first catch-up (spawn → all on /posts)', catchUpMs, 'ms'));
  rows.push(row(figureName, 'restart (spawn → /readyz 200)', restartMs, 'ms', targets.restartMs, note));
  rows.push(row('7. Peak memory (VmHWM)', 'event-bus in figure 6', busPeak, 'MB', targets.peakMemoryMb));
  rows.push(row('7. Peak memory (VmHWM)', 'query in figure 6, first catch-up', firstPeak, 'MB', targets.peakMemoryMb));
  rows.push(row('7. Peak memory (VmHWM)', 'query in figure 6, after restart', restartedPeak, 'MB', targets.peakMemoryMb));
  await stopQuery();
  await stopBus();
}

// ---- the run ----

async function main(): Promise<number> {
  const machine = machineInfo();
  log(`${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}, kernel ${machine.kernel}`);
  await figure('Figures 1–4 (main stack)', mainStack);
  await figure('5. Bus fan-out', fanOut);
  await figure('6. Query restart', queryRestart);
  await cleanupAll();
  if (aborting) return 1;

  const report: Report = { date: new Date().toISOString(), machine, durability, methods, rows, errors, details, totalSeconds: (performance.now() - started) / 1000 };
  const markdown = renderMarkdown(report);
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(resultsDir, 'latest.md'), markdown);
  process.stdout.write(`\n${markdown}\n`);
  const missed = rows.filter((r) => r.ok === false).length;
  log(`done: ${missed === 0 ? 'all targets met' : `${missed} target(s) MISSED`}${errors.length > 0 ? `, ${errors.length} figure(s) could not be measured` : ''}; wrote ${path.relative(process.cwd(), resultsDir)}/latest.{md,json}`);
  // Missed targets are results; only a figure that could not be measured is a failure.
  return errors.length > 0 ? 1 : 0;
}

async function abort(reason: string, code: number): Promise<void> {
  if (aborting) return;
  aborting = true;
  log(`${reason}: stopping every process and removing temporary data (no results written)`);
  await cleanupAll();
  process.exit(code);
}

// `on`, not `once`: a second signal (timeout, pnpm and a terminal may all forward one) must not
// kill the bench halfway through its cleanup and orphan the services.
process.on('SIGINT', () => void abort('interrupted', 130));
process.on('SIGTERM', () => void abort('terminated', 143));
setTimeout(() => void abort(`the whole run took longer than ${settings.wholeRunTimeoutMs / 1000} s`, 1), settings.wholeRunTimeoutMs).unref();

try {
  process.exitCode = await main();
} catch (error) {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
// Keep-alive sockets or a stray timer must not keep a finished benchmark alive (an abort exits by itself).
if (!aborting) process.exit();
