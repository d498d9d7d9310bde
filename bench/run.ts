/**
 * `pnpm bench`: measures the figures of the performance issue against the built services, each
 * running as its own process on 127.0.0.1, and writes bench/results/latest.{md,json}. Every figure
 * is measured twice: with the bus's log in its events.log file, and with it in a JetStream stream
 * (one nats-server per figure); without a nats-server the JetStream column says "not run".
 *
 * A missed target is reported, not fatal (exit code 0); a figure that cannot be measured at all
 * is an error (exit code 1). Every process, JetStream server and temporary directory is removed on
 * the way out.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { BlogEvent, PostsView } from '@blog/common';
import {
  freePort,
  makeTempDir,
  NatsServer,
  natsServerAvailable,
  natsServerPath,
  ServiceProcess,
  signedFetch,
  startStack,
  testBusSecret,
  type Stack,
  type StackTopology,
} from '@blog/testing';
import { blogHistory, postEvents, startStubSubscriber, writeEventLog } from './fixtures.ts';
import {
  machineInfo,
  natsServerPid,
  peakMemoryMb,
  record,
  renderMarkdown,
  storeLabels,
  stores,
  summarize,
  type Report,
  type Row,
  type Store,
  type StoreRun,
  type Target,
} from './figures.ts';
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
  /** JetStream figures 5-6: events per signed POST /events while filling the stream through a bus. */
  publishBatch: 1_000,
  /** ...and how long filling 100,000 events may take. */
  fillTimeoutMs: 60_000,
  /** A hard stop; the per-figure bounds above keep a slow run well inside it. */
  wholeRunTimeoutMs: 300_000,
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

/** Figures 1-4 run on these; one bus and one query process on both, so the columns compare like for like. */
const topologies: Record<Store, StackTopology> = {
  file: { eventStore: 'file', busReplicas: 1, queryReplicas: 1 },
  jetstream: { eventStore: 'jetstream', busReplicas: 1, queryReplicas: 1 },
};

const durability: Record<Store, string> = {
  file: 'a 201 from posts or comments comes only after the bus has fdatasync-ed the event (group commit), so these figures include the disk flushes of the log. Each service\'s own journal is fdatasync-ed every 200 ms (a restart re-pulls anything newer from the bus).',
  jetstream:
    'a 201 from posts or comments comes only after JetStream has acknowledged the publish (one nats-server, file storage, stream replicas 1) and the bus has read the event back from the stream into its index. nats-server acknowledges once the message is in its file store and by default fsyncs that store only periodically (sync_interval, 2 min), so unlike the file log these figures include no disk flush per write. Each service\'s own journal is fdatasync-ed every 200 ms, as on the file log.',
};

function natsServerVersion(): string | undefined {
  try {
    return execFileSync(natsServerPath, ['--version'], { encoding: 'utf8', timeout: 5_000 }).trim();
  } catch {
    return undefined;
  }
}

const jetStreamAvailable = natsServerAvailable();
const runs: Record<Store, StoreRun> = {
  file: { label: storeLabels.file, topology: topologies.file, ran: true, durability: durability.file },
  jetstream: {
    label: storeLabels.jetstream,
    topology: topologies.jetstream,
    ran: jetStreamAvailable,
    ...(jetStreamAvailable ? { server: natsServerVersion() ?? natsServerPath } : { notRunReason: 'no nats-server' }),
    durability: durability.jetstream,
  },
};

/** How each figure is measured, printed under the table. */
const methods = [
  `1: autocannon (closed loop) POST /posts/create on posts, ${settings.connections} connections, ${settings.warmUpPosts} warm-up posts not counted, then ${settings.createPosts.toLocaleString('en-US')}; throughput = 201s / wall time, latency per request.`,
  `2: autocannon GET /posts on query, ${settings.connections} connections for ${settings.readSeconds} s, once query shows every post of figure 1.`,
  `3: open loop (request i sent at i/${settings.rate} s, whatever the answers do) POST /posts/create for ${settings.openLoopSeconds} s; one /posts/stream connection opened before; latency = first \`post\` frame with the id − arrival of its 201 (a post already on the stream before its 201 counts as 0 ms).`,
  `4: the same open loop, POST /posts/:id/comments on existing posts (every tenth says "orange"); latency = first frame showing the comment approved/rejected − its 201; verdicts checked.`,
  `5: ${settings.fanOutEvents.toLocaleString('en-US')} PostCreated events in the log before the bus that fans out starts. File log: written straight to its events.log. JetStream: a nats-server of the figure's own, a bus on a fresh stream with no subscribers, the events published through it (signed POST /events, ${settings.publishBatch.toLocaleString('en-US')} per request), that bus stopped (SIGTERM), then a new bus started on the stream. ${settings.fanOutSubscribers} stub subscribers (in the bench process) ack with lastSeq and maxBatch 1000 (the JetStream bus fetches at most 250 events per delivery); time from bus ready (or its first delivery, if earlier) until each stub has the last seq.`,
  `6: a bus log of ${(settings.restartPosts * 4).toLocaleString('en-US')} events (${settings.restartPosts.toLocaleString('en-US')} posts, each with a comment created, moderated and updated). File log: written to events.log, the bus pushes to query. JetStream: a nats-server of the figure's own, the events published through the bus (signed POST /events, ${settings.publishBatch.toLocaleString('en-US')} per request), and query follows that bus itself (EVENT_DELIVERY=pull, long polls of GET /events). Query catches up, is stopped with SIGTERM (writes its snapshot), and is started again: spawn → first /readyz 200 (polled every 5 ms).`,
  '7: VmHWM from /proc/<pid>/status of each process, read at the end of its figures; on JetStream also nats-server (printed only: not one of our services) and, in figure 5, the bus that filled the stream.',
];

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
const started = performance.now();
const rows: Row[] = [];
const errors: Report['errors'] = [];
const details: Report['details'] = { file: {}, jetstream: {} };

/** Adds `store`'s reading to the table. */
const put = (store: Store, figureName: string, metric: string, value: number | undefined, unit: string, target?: Target, note?: string) =>
  record(rows, store, figureName, metric, value, unit, target, note);

const memoryFigure = '7. Peak memory (VmHWM)';

// ---- cleanup: everything started is registered here and undone in reverse, even on error ----

type Undo = () => Promise<unknown> | void;
const cleanups: Undo[] = [];

const runUndo = (undo: Undo) => Promise.resolve().then(undo).catch((error: unknown) => log(`cleanup failed: ${String(error)}`));

/** Undos started early (by the function `onCleanup` returns): the final pass waits for them too. */
const inFlight = new Set<Promise<unknown>>();

/** Registers `undo`; returns a function that runs it now (once) instead of at exit. */
function onCleanup(undo: Undo): () => Promise<void> {
  cleanups.push(undo);
  return async () => {
    const index = cleanups.indexOf(undo);
    if (index === -1) return;
    cleanups.splice(index, 1);
    const running = runUndo(undo);
    inFlight.add(running);
    try {
      await running;
    } finally {
      inFlight.delete(running);
    }
  };
}

type Defer = (undo: Undo) => () => Promise<void>;

/**
 * Runs `body` with cleanups of its own: registered globally (an interrupt still undoes them) and
 * undone, newest first, as soon as `body` ends, however it ends, so the next figure starts clean.
 */
async function scoped<T>(body: (defer: Defer) => Promise<T>): Promise<T> {
  const undos: Array<() => Promise<void>> = [];
  const defer: Defer = (undo) => {
    const run = onCleanup(undo);
    undos.push(run);
    return run;
  };
  try {
    return await body(defer);
  } finally {
    while (undos.length > 0) await undos.pop()!();
  }
}

let cleaning: Promise<void> | undefined;

/**
 * Undoes everything registered, newest first, and waits for undos already under way (a figure
 * ending while an abort cleans up must not let the process exit halfway through, say, removing a
 * JetStream store); concurrent callers share one pass.
 */
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0 || inFlight.size > 0) {
      if (cleanups.length > 0) await runUndo(cleanups.pop()!);
      else await Promise.all(inFlight);
    }
  })().finally(() => (cleaning = undefined));
  return cleaning;
}

/** Set on SIGINT, SIGTERM or the whole-run timeout: no new figure starts. */
let aborting = false;

function log(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
}

/** Runs one figure on one store; a failure is recorded (for the figures it `covers`) and the bench goes on. */
async function figure(store: Store, name: string, covers: number[], measure: () => Promise<void>): Promise<void> {
  if (aborting) return;
  log(`${name} on ${storeLabels[store]}...`);
  try {
    await measure();
  } catch (error) {
    if (aborting) return; // the processes were stopped under it: not a result
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    log(`${name} on ${storeLabels[store]} FAILED: ${message}`);
    errors.push({ store, figure: name, figures: covers, message });
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

const describeTopology = (t: StackTopology) => `eventStore ${t.eventStore}, ${t.busReplicas} bus, ${t.queryReplicas} query`;

// ---- JetStream for figures 5-6: a server of the figure's own, filled through a bus ----

/** A fresh single-node JetStream server, destroyed (with its store) when the figure ends. */
async function startNats(defer: Defer): Promise<NatsServer> {
  const starting = NatsServer.start();
  defer(() => starting.then((nats) => nats.destroy(), () => undefined));
  return starting;
}

/** What a bus needs to keep its log in a new stream on `nats`. */
const jetStreamEnv = (nats: NatsServer): Record<string, string> => ({
  EVENT_STORE: nats.url,
  EVENT_STREAM: `BENCH_${randomBytes(6).toString('hex')}`,
  EVENT_STREAM_REPLICAS: '1',
});

interface Filled {
  /** The bus that published them, still running, without subscribers. */
  bus: ServiceProcess;
  /** SIGKILLs it now instead of at the end of the figure. */
  kill: () => Promise<void>;
  /** The seq of the last event (the stream's sequence). */
  events: number;
  fillMs: number;
  requests: number;
}

/**
 * Starts a bus on the stream in `env` with no subscribers and publishes `events` through it in
 * order, `settings.publishBatch` per signed POST /events (one answer per batch, once JetStream has
 * stored them all). There is no events.log to write on JetStream: this is how a log gets there.
 */
async function fillThroughBus(defer: Defer, env: Record<string, string>, events: Iterable<BlogEvent>): Promise<Filled> {
  const bus = new ServiceProcess('event-bus', await freePort(), { ...env, SUBSCRIBERS: '' });
  const kill = defer(() => bus.kill());
  await bus.start();
  const startedAt = performance.now();
  let batch: BlogEvent[] = [];
  let published = 0;
  let lastSeq = 0;
  let requests = 0;
  const send = async () => {
    if (performance.now() - startedAt > settings.fillTimeoutMs) throw new Error(`filling the stream took longer than ${settings.fillTimeoutMs / 1000} s (${lastSeq} events stored)`);
    const response = await signedFetch(`${bus.url}/events`, { method: 'POST', body: JSON.stringify(batch) });
    requests += 1;
    if (response.status !== 201) throw new Error(`POST /events with ${batch.length} events answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
    const stored = (await response.json()) as Array<{ seq: number }>;
    lastSeq = stored.at(-1)?.seq ?? lastSeq;
    batch = [];
  };
  for (const event of events) {
    batch.push(event);
    published += 1;
    if (batch.length === settings.publishBatch) await send();
  }
  if (batch.length > 0) await send();
  if (lastSeq !== published) throw new Error(`the stream ends at seq ${lastSeq} after ${published} events were published`);
  const fillMs = performance.now() - startedAt;
  log(`stream filled through the bus: ${published.toLocaleString('en-US')} events in ${requests} requests, ${(fillMs / 1000).toFixed(1)} s`);
  return { bus, kill, events: lastSeq, fillMs, requests };
}

// ---- figures 1-4 and the memory of the main stack ----

async function mainStack(store: Store): Promise<void> {
  await scoped(async (defer) => {
    const topology = topologies[store];
    log(`starting the stack (${describeTopology(topology)}): event-bus, posts, comments, query, moderation${topology.eventStore === 'jetstream' ? ', nats-server' : ''}`);
    const starting = startStack({ LOG_LEVEL: 'warn' }, topology);
    // Registered before it is up, so an interrupt during the start still stops it (a failed start cleans up itself).
    defer(() => starting.then((stack) => stack.destroy(), () => undefined));
    const stack = await starting;
    const processes = () => [
      ...stack.all.map((service) => ({ name: service.name, pid: service.pid, ours: true })),
      ...(stack.nats ? [{ name: 'nats-server', pid: natsServerPid(stack.nats.port), ours: false }] : []),
    ];
    const atStartMb = new Map(processes().map((p) => [p.name, peakMemoryMb(p.pid)]));
    const agent = createAgent();
    defer(() => agent.destroy());
    try {
      const created = await createPosts(store, stack);
      await readPosts(store, stack, created);
      const watcher = new LiveStreamWatcher(`${stack.query.url}/posts/stream`);
      defer(() => watcher.close());
      await watcher.ready;
      await figure(store, '3. Propagation', [3], () => propagation(store, stack, watcher, agent));
      await figure(store, '4. Moderation', [4], () => moderation(store, stack, watcher, agent));
      details[store].liveStreamFrames = watcher.frames;
    } finally {
      // Read even when a figure failed: the memory of what did run is still a result.
      for (const p of processes()) {
        const atStart = atStartMb.get(p.name);
        const notes = [atStart === undefined ? undefined : `${atStart.toFixed(0)} MB right after start`, p.ours ? undefined : 'not one of our services'].filter(Boolean);
        put(store, memoryFigure, `${p.name} after figures 1–4`, peakMemoryMb(p.pid), 'MB', p.ours ? targets.peakMemoryMb : undefined, notes.join(', '));
      }
    }
  });
}

async function createPosts(store: Store, stack: Stack): Promise<number> {
  let created = 0;
  await figure(store, '1. Create post', [1], async () => {
    const url = `${stack.posts.url}/posts/create`;
    const warmUp = await closedLoop({ url, method: 'POST', connections: settings.connections, amount: settings.warmUpPosts, body: (i) => ({ title: `Warm-up post ${i}` }) });
    const result = await closedLoop({ url, method: 'POST', connections: settings.connections, amount: settings.createPosts, body: (i) => ({ title: `Bench post ${i}` }) });
    created = warmUp.ok + result.ok;
    details[store].createPost = { warmUp, measured: result };
    const figureName = `1. Create post (c${settings.connections}, ${settings.createPosts.toLocaleString('en-US')} posts)`;
    const note = result.failed > 0 ? `${result.failed} failed` : undefined;
    put(store, figureName, 'throughput', result.throughput, '/s', targets.createThroughput, note);
    put(store, figureName, 'p50 latency', result.latency.p50, 'ms');
    put(store, figureName, 'p99 latency', result.latency.p99, 'ms', targets.createP99);
  });
  return created;
}

async function readPosts(store: Store, stack: Stack, expected: number): Promise<void> {
  await figure(store, '2. GET /posts on query', [2], async () => {
    const caughtUp = await waitUntil(async () => (await countPosts(stack.query)) >= expected, 20_000, 100);
    const stored = await countPosts(stack.query);
    if (!caughtUp) log(`query has ${stored} of ${expected} posts after 20 s; measuring anyway`);
    const result = await closedLoop({ url: `${stack.query.url}/posts`, method: 'GET', connections: settings.connections, durationSeconds: settings.readSeconds });
    details[store].readPosts = { postsStored: stored, ...result };
    // The number of posts goes in the note: the row must be the same for both stores.
    const figureName = `2. GET /posts on query (all posts of figure 1, c${settings.connections}, ${settings.readSeconds} s)`;
    const notes = [`${stored.toLocaleString('en-US')} posts`, result.failed > 0 ? `${result.failed} failed` : undefined].filter(Boolean);
    put(store, figureName, 'throughput', result.throughput, '/s', targets.readThroughput, notes.join(', '));
    put(store, figureName, 'p50 latency', result.latency.p50, 'ms');
    put(store, figureName, 'p99 latency', result.latency.p99, 'ms');
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

async function propagation(store: Store, stack: Stack, watcher: LiveStreamWatcher, agent: ReturnType<typeof createAgent>): Promise<void> {
  const { answered, failed, load, requestLatency } = await openLoopCreate(
    'propagation load',
    (i) => ({ url: `${stack.posts.url}/posts/create`, body: { title: `Live post ${i}` }, idOf: (body) => (body as { id?: string }).id }),
    agent,
  );
  await waitUntil(() => [...answered.keys()].every((id) => watcher.postSeenAt.has(id)), settings.settleTimeoutMs);
  const result = visibilityLatencies(answered, (id) => watcher.postSeenAt.get(id));
  details[store].propagation = { ...result, sent: load.sent, answered: answered.size, failed, load, requestLatency };
  const figureName = `3. Propagation 201 → /posts/stream (${settings.rate}/s for ${settings.openLoopSeconds} s)`;
  const seenNote = `${result.seen}/${load.sent} seen, ${result.beforeAnswer} before their 201, generator lag ≤ ${load.maxLagMs.toFixed(0)} ms`;
  put(store, figureName, 'p50', result.latency.p50, 'ms', undefined, seenNote);
  put(store, figureName, 'p99', result.latency.p99, 'ms', targets.propagationP99, result.seen < load.sent ? `only ${result.seen}/${load.sent} seen` : undefined);
  put(store, figureName, 'create p99 under this load', requestLatency.p99, 'ms');
}

async function moderation(store: Store, stack: Stack, watcher: LiveStreamWatcher, agent: ReturnType<typeof createAgent>): Promise<void> {
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
  details[store].moderation = { ...result, sent: load.sent, answered: answered.size, failed, wrongVerdicts, load, requestLatency };
  const figureName = `4. Moderation 201 → final status on stream (${settings.rate}/s for ${settings.openLoopSeconds} s)`;
  const seenNote = `${result.seen}/${load.sent} settled${wrongVerdicts > 0 ? `, ${wrongVerdicts} WRONG verdicts` : ''}, ${result.beforeAnswer} before their 201, generator lag ≤ ${load.maxLagMs.toFixed(0)} ms`;
  put(store, figureName, 'p50', result.latency.p50, 'ms', undefined, seenNote);
  put(store, figureName, 'p99', result.latency.p99, 'ms', targets.moderationP99, result.seen < load.sent ? `only ${result.seen}/${load.sent} settled` : undefined);
  put(store, figureName, 'comment p99 under this load', requestLatency.p99, 'ms');
}

// ---- figure 5: bus fan-out to four stub subscribers ----

async function fanOut(store: Store): Promise<void> {
  await scoped(async (defer) => {
    const events = settings.fanOutEvents;
    const data = await makeTempDir('blog-bench-fanout-');
    defer(() => data.remove());
    const env: Record<string, string> = { LOG_LEVEL: 'warn', DATA_DIR: data.path, EVENT_BUS_SECRET: testBusSecret };
    let nats: NatsServer | undefined;
    let filled: (Filled & { peakMb: number | undefined }) | undefined;
    if (store === 'file') await writeEventLog(data.path, postEvents(events));
    else {
      nats = await startNats(defer);
      Object.assign(env, jetStreamEnv(nats));
      const filling = await fillThroughBus(defer, env, postEvents(events));
      filled = { ...filling, peakMb: peakMemoryMb(filling.bus.pid) };
      // The bus that fans out starts on a stream nobody else serves, as the file-log bus starts on its file.
      const exitCode = await filling.bus.stop();
      if (exitCode !== 0) log(`the bus that filled the stream exited with ${exitCode} on SIGTERM`);
      await filling.kill();
    }
    const stubs = await Promise.all(Array.from({ length: settings.fanOutSubscribers }, (_, i) => startStubSubscriber(`stub${i + 1}`)));
    for (const stub of stubs) defer(() => stub.close());
    const bus = new ServiceProcess('event-bus', await freePort(), { ...env, SUBSCRIBERS: stubs.map((stub) => `${stub.name}=${stub.url}`).join(',') });
    const stopBus = defer(() => bus.kill());
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
    const natsPeak = nats ? peakMemoryMb(natsServerPid(nats.port)) : undefined;
    details[store].fanOut = {
      events,
      busStartMs: readyAt - spawnedAt,
      subscribers: perSubscriber,
      ...(filled ? { filledThroughBus: { events: filled.events, requests: filled.requests, fillMs: filled.fillMs, busPeakMb: filled.peakMb } } : {}),
    };
    const startNote = filled
      ? `reads the stream into its index; the stream was filled through a bus in ${(filled.fillMs / 1000).toFixed(1)} s, ${filled.requests} POSTs`
      : undefined;
    put(store, figureName, 'bus start with the log (spawn → ready)', readyAt - spawnedAt, 'ms', undefined, startNote);
    for (const s of perSubscriber) {
      const note = s.done ? `${s.seconds.toFixed(2)} s, ${Math.round(s.received / s.requests)} events/request` : `TIMED OUT at seq ${s.lastSeq}`;
      put(store, figureName, `events/s to ${s.name}`, s.eventsPerSecond, '/s', undefined, note);
    }
    put(store, memoryFigure, 'event-bus in figure 5', busPeak, 'MB', targets.peakMemoryMb);
    if (filled) put(store, memoryFigure, 'event-bus filling the stream in figure 5', filled.peakMb, 'MB', targets.peakMemoryMb, `${filled.requests} POSTs of ${settings.publishBatch.toLocaleString('en-US')}`);
    if (nats) put(store, memoryFigure, 'nats-server in figure 5', natsPeak, 'MB', undefined, 'not one of our services');
    await stopBus();
  });
}

// ---- figure 6: query restart after 100,000 events ----

async function queryRestart(store: Store): Promise<void> {
  await scoped(async (defer) => {
    const busData = await makeTempDir('blog-bench-restart-bus-');
    defer(() => busData.remove());
    const queryData = await makeTempDir('blog-bench-restart-query-');
    defer(() => queryData.remove());
    const queryPort = await freePort();
    const busEnv: Record<string, string> = { LOG_LEVEL: 'warn', DATA_DIR: busData.path, EVENT_BUS_SECRET: testBusSecret };
    let bus: ServiceProcess;
    let events: number;
    let nats: NatsServer | undefined;
    let fillMs: number | undefined;
    if (store === 'file') {
      events = await writeEventLog(busData.path, blogHistory(settings.restartPosts));
      bus = new ServiceProcess('event-bus', await freePort(), { ...busEnv, SUBSCRIBERS: `query=http://127.0.0.1:${queryPort}/events`, RETRY_MAX_DELAY_MS: '500' });
      defer(() => bus.kill());
      await bus.start();
    } else {
      // The bus that filled the stream stays up: query follows it with long polls.
      nats = await startNats(defer);
      const filled = await fillThroughBus(defer, { ...busEnv, ...jetStreamEnv(nats) }, blogHistory(settings.restartPosts));
      ({ bus, events, fillMs } = filled);
    }
    const query = new ServiceProcess('query', queryPort, {
      LOG_LEVEL: 'warn',
      DATA_DIR: queryData.path,
      EVENT_BUS_URL: bus.url,
      EVENT_BUS_SECRET: testBusSecret,
      ...(store === 'jetstream' ? { EVENT_DELIVERY: 'pull' } : {}),
    });
    defer(() => query.kill());

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
    const natsPeak = nats ? peakMemoryMb(natsServerPid(nats.port)) : undefined;

    details[store].queryRestart = {
      events,
      posts: settings.restartPosts,
      queryDelivery: store === 'jetstream' ? 'pull' : 'push',
      ...(fillMs === undefined ? {} : { fillMs }),
      catchUpMs,
      snapshotWritten,
      restartMs,
      postsAfterRestart: postsAfter,
    };
    const figureName = `6. Query restart after ${(settings.restartPosts * 4).toLocaleString('en-US')} events`;
    const delivery = store === 'jetstream' ? 'query pulls' : 'bus pushes';
    const note = [snapshotWritten ? 'from snapshot' : 'NO snapshot written', postsAfter === settings.restartPosts ? `${postsAfter.toLocaleString('en-US')} posts back` : `only ${postsAfter} posts back`].join(', ');
    put(store, figureName, 'first catch-up (spawn → all on /posts)', catchUpMs, 'ms', undefined, delivery);
    put(store, figureName, 'restart (spawn → /readyz 200)', restartMs, 'ms', targets.restartMs, note);
    put(store, memoryFigure, 'event-bus in figure 6', busPeak, 'MB', targets.peakMemoryMb, store === 'jetstream' ? 'it also filled the stream' : undefined);
    put(store, memoryFigure, 'query in figure 6, first catch-up', firstPeak, 'MB', targets.peakMemoryMb);
    put(store, memoryFigure, 'query in figure 6, after restart', restartedPeak, 'MB', targets.peakMemoryMb);
    if (nats) put(store, memoryFigure, 'nats-server in figure 6', natsPeak, 'MB', undefined, 'not one of our services');
  });
}

// ---- the run ----

async function main(): Promise<number> {
  const machine = machineInfo();
  log(`${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}, kernel ${machine.kernel}`);
  const measured = stores.filter((store) => runs[store].ran);
  if (!runs.jetstream.ran) log(`no nats-server at ${natsServerPath}: the JetStream column is not run`);
  else log(`JetStream: ${runs.jetstream.server ?? natsServerPath}`);
  // Each figure on every store before the next figure: a machine that gets busier mid-run skews both columns alike.
  for (const store of measured) await figure(store, 'Figures 1–4 (main stack)', [1, 2, 3, 4, 7], () => mainStack(store));
  for (const store of measured) await figure(store, '5. Bus fan-out', [5, 7], () => fanOut(store));
  for (const store of measured) await figure(store, '6. Query restart', [6, 7], () => queryRestart(store));
  await cleanupAll();
  if (aborting) return 1;

  const report: Report = { date: new Date().toISOString(), machine, runs, methods, rows, errors, details, totalSeconds: (performance.now() - started) / 1000 };
  const markdown = renderMarkdown(report);
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(resultsDir, 'latest.md'), markdown);
  process.stdout.write(`\n${markdown}\n`);
  const missed = measured.flatMap((store) => rows.filter((r) => r[store]?.ok === false).map(() => store));
  const missedText = missed.length === 0 ? 'all targets met' : measured.map((store) => `${missed.filter((s) => s === store).length} target(s) MISSED on ${storeLabels[store]}`).join(', ');
  log(`done: ${missedText}${errors.length > 0 ? `, ${errors.length} figure(s) could not be measured` : ''}${runs.jetstream.ran ? '' : ', JetStream not run (no nats-server)'}; wrote ${path.relative(process.cwd(), resultsDir)}/latest.{md,json}`);
  // Missed targets are results, and so is a JetStream column that could not run; only a figure that could not be measured is a failure.
  return errors.length > 0 ? 1 : 0;
}

async function abort(reason: string, code: number): Promise<void> {
  if (aborting) return;
  aborting = true;
  log(`${reason}: stopping every process and JetStream server and removing temporary data (no results written)`);
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
