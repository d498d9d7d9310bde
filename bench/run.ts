/**
 * `pnpm bench`: measures the figures of the performance issues against the built services, each
 * running as its own process on 127.0.0.1, and writes bench/results/latest.{md,json}. Every figure
 * is measured twice: with the bus's log in its SQLite database (event-bus.db), and with it in a
 * JetStream stream (one nats-server per figure); without a nats-server the JetStream column says
 * "not run".
 *
 * `--only GROUP[,GROUP]` (or BENCH_ONLY) runs some figures only: main (1–4 and their memory),
 * fan-out (5), query-restart (6), history-scale (8); such a run writes bench/results/partial.{md,json}
 * and leaves latest.* alone. `--history-events N[,N]` (or BENCH_HISTORY_EVENTS) sets figure 8's sizes.
 *
 * A missed target is reported, not fatal (exit code 0); a figure that cannot be measured at all
 * is an error (exit code 1). Every process, JetStream server and temporary directory is removed on
 * the way out.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { headSeqHeader, type PostsPage, type PostsView, type PublishRequest } from '@blog/common';
import {
  deploymentNodeOptions,
  freePort,
  getJson,
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
import { blogHistory, postEvents, startStubSubscriber } from './fixtures.ts';
import {
  machineInfo,
  natsServerPid,
  peakMemoryMb,
  record,
  renderMarkdown,
  RssSampler,
  storeLabels,
  stores,
  summarize,
  type PhaseMemory,
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
  /** Figures 5, 6 and 8: events per signed POST /events while filling a log through a bus (the bus's maximum). */
  publishBatch: 1_000,
  /** ...and how long filling 100,000 events may take in figures 5-6 (JetStream took 31 s on a busy machine). */
  fillTimeoutMs: 100_000,
  /** Figure 8: the history's sizes in events (four per post), smallest first; the larger are compared with the smallest. */
  historyEvents: [100_000, 1_000_000],
  /** Figure 8: the page size of the paged reads. */
  historyPageLimit: 50,
  /** Figure 8: how often VmRSS is sampled. */
  rssSampleMs: 50,
  /** Figure 8: how long the restarted bus is watched after it is ready, before a consumer starts. */
  busSettleMs: 1_000,
  /**
   * Figure 8: filling, a bus start or a catch-up slower than this on average (events/s) is a failure,
   * not a figure: it bounds those waits by the size of the history.
   */
  historyMinRate: 1_000,
  /** Figure 8: a restart of query on its own state, or the whole map, may take this long at most. */
  historyStepTimeoutMs: 60_000,
  /**
   * A hard stop, per group of figures run. Figures 1–4 took about 60 s on both stores, 5 and 6
   * each 70–100 s now that their logs are filled through a bus. Figure 8 took 64–90 s at 100,000
   * events on both stores with the machine busy (publishing at 6,000–14,000/s on the file log and
   * 3,200–6,300/s on JetStream, query catching up at 14,000/s and 8,000–9,000/s): at most 0.9 ms
   * per event. Its budget is 1.5 ms per event of every size plus two minutes: 1,770 s by default.
   */
  wholeRunTimeoutMs: { main: 150_000, 'fan-out': 180_000, 'query-restart': 180_000 },
  historyBudgetMsPerEvent: 1.5,
};

const targets = {
  createThroughput: { kind: 'min', value: 3_000 },
  createP99: { kind: 'max', value: 25 },
  readThroughput: { kind: 'min', value: 3_000 },
  propagationP99: { kind: 'max', value: 10 },
  moderationP99: { kind: 'max', value: 20 },
  restartMs: { kind: 'max', value: 1_000 },
  peakMemoryMb: { kind: 'max', value: 80 },
  // Figure 8 (history scale).
  historyBusRssMb: { kind: 'max', value: 128 },
  /** Above the same reading at the smallest size (100,000 events). */
  historyBusRssGrowthMb: { kind: 'max', value: 20 },
  /** At 1,000,000 events. */
  historyBusRestartMs: { kind: 'max', value: 2_000 },
  historyCatchUpRate: { kind: 'min', value: 20_000 },
  historyQueryRssMb: { kind: 'max', value: 128 },
  historyQueryRestartMs: { kind: 'max', value: 1_000 },
  /** At 1,000,000 events. */
  historyPageThroughput: { kind: 'min', value: 2_000 },
  /** At 1,000,000 events. */
  historyPageP99: { kind: 'max', value: 20 },
  historyWholeMapRssMb: { kind: 'max', value: 160 },
} as const;

/** Figure 8's targets on the bus's restart and on paged reads are set at this size; smaller sizes print them only. */
const historyTargetEvents = 1_000_000;

/** Figures 1-4 run on these; one bus and one query process on both, so the columns compare like for like. */
const topologies: Record<Store, StackTopology> = {
  file: { eventStore: 'file', busReplicas: 1, queryReplicas: 1 },
  jetstream: { eventStore: 'jetstream', busReplicas: 1, queryReplicas: 1 },
};

const consumerDurability =
  'Each consumer commits every batch it applies (its state, its position in the log and the events it publishes in reaction) in one SQLite transaction in its state.db, WAL mode with synchronous=NORMAL: a killed process loses nothing, a power cut at most the last commits, which the bus sends again; there is no journal of its own.';

const durability: Record<Store, string> = {
  file: `a 201 from posts or comments comes only after the bus has committed the event to its SQLite log (event-bus.db, WAL mode, synchronous=FULL: the commit is fsync-ed before anything is acknowledged or delivered; every publish of one event-loop turn shares one commit), so these figures include the disk flushes of the log. ${consumerDurability}`,
  jetstream: `a 201 from posts or comments comes only after JetStream has acknowledged the publish (one nats-server, file storage, stream replicas 1). nats-server acknowledges once the message is in its file store and by default fsyncs that store only periodically (sync_interval, 2 min), so unlike the file log these figures include no disk flush per write. ${consumerDurability}`,
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

// ---- what to run: the command line ----

/** Groups of figures that `--only` can pick; figure 7 (memory) is read by the groups it lists. */
const figureGroups = {
  main: [1, 2, 3, 4, 7],
  'fan-out': [5, 7],
  'query-restart': [6, 7],
  'history-scale': [8],
} as const;
type FigureGroup = keyof typeof figureGroups;
const groupNames = Object.keys(figureGroups) as FigureGroup[];

const usage = `usage: node bench/run.ts [--only ${groupNames.join('|')}[,...]] [--history-events N[,N...]]
  (or BENCH_ONLY and BENCH_HISTORY_EVENTS; with pnpm: pnpm bench --only history-scale)
  --only              run these groups of figures only; results go to bench/results/partial.{md,json}
  --history-events    figure 8's sizes in events, multiples of 4, ascending (default ${settings.historyEvents.join(',')})`;

function parseCommandLine(): { only: FigureGroup[]; historyEvents: number[]; command: string } {
  const { values } = parseArgs({ options: { only: { type: 'string' }, 'history-events': { type: 'string' }, help: { type: 'boolean' } }, strict: true });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const onlyText = values.only ?? process.env.BENCH_ONLY;
  const only = onlyText === undefined || onlyText === '' ? groupNames : onlyText.split(',').map((name) => name.trim());
  const unknown = only.filter((name) => !(groupNames as string[]).includes(name));
  if (unknown.length > 0) throw new Error(`unknown figure group(s) ${unknown.join(', ')}`);
  const sizesText = values['history-events'] ?? process.env.BENCH_HISTORY_EVENTS;
  const historyEvents = sizesText === undefined || sizesText === '' ? settings.historyEvents : sizesText.split(',').map((size) => Number(size.trim().replaceAll('_', '')));
  if (historyEvents.some((size, i) => !Number.isSafeInteger(size) || size < 4 || size % 4 !== 0 || (i > 0 && size <= historyEvents[i - 1]!))) {
    throw new Error(`--history-events must be ascending multiples of 4 (four events per post), not ${sizesText}`);
  }
  const partial = only.length < groupNames.length;
  const sizesDiffer = historyEvents.join(',') !== settings.historyEvents.join(',');
  const command = ['pnpm bench', partial ? `--only ${only.join(',')}` : '', sizesDiffer ? `--history-events ${historyEvents.join(',')}` : ''].filter(Boolean).join(' ');
  return { only: groupNames.filter((name) => only.includes(name)), historyEvents, command };
}

let commandLine: ReturnType<typeof parseCommandLine>;
try {
  commandLine = parseCommandLine();
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${usage}\n`);
  process.exit(2);
}
const selected = new Set<FigureGroup>(commandLine.only);
const partialRun = selected.size < groupNames.length;
const figuresRun = new Set<number>([...selected].flatMap((group) => figureGroups[group]));

/** What figure 8 runs with, for the method text (an unreadable manifest fails the figure itself). */
function describeHeapCaps(): string {
  try {
    return (['event-bus', 'query'] as const).map((service) => `${service} \`${deploymentNodeOptions(service)}\``).join(', ');
  } catch (error) {
    return `could not be read: ${error instanceof Error ? error.message : String(error)}`;
  }
}

const formatCount = (n: number) => n.toLocaleString('en-US');

/** How each figure is measured, printed under the table: the lines of the figures that ran. */
function methodsFor(figures: ReadonlySet<number>): string[] {
  const [smallest] = commandLine.historyEvents;
  const lines: Array<[number, string]> = [
    [1, `1: autocannon (closed loop) POST /posts/create on posts, ${settings.connections} connections, ${settings.warmUpPosts} warm-up posts not counted, then ${formatCount(settings.createPosts)}; throughput = 201s / wall time, latency per request.`],
    [2, `2: autocannon GET /posts on query, ${settings.connections} connections for ${settings.readSeconds} s, once query shows every post of figure 1.`],
    [3, `3: open loop (request i sent at i/${settings.rate} s, whatever the answers do) POST /posts/create for ${settings.openLoopSeconds} s; one /posts/stream connection opened before (its snapshot is the newest page); latency = first \`post\` frame with the id − arrival of its 201 (a post already on the stream before its 201 counts as 0 ms).`],
    [4, `4: the same open loop, POST /posts/:id/comments on existing posts (every tenth says "orange"); latency = first frame showing the comment approved/rejected − its 201; verdicts checked.`],
    [5, `5: ${formatCount(settings.fanOutEvents)} PostCreated events in the log before the bus that fans out starts, published through a bus with no subscribers (signed POST /events, ${formatCount(settings.publishBatch)} per request, one request at a time; on JetStream into a fresh stream on a nats-server of the figure's own); that bus is stopped (SIGTERM) and a new one started on the same log (the same DATA_DIR, or the same stream). ${settings.fanOutSubscribers} stub subscribers (in the bench process) ack with lastSeq and maxBatch 1000 (the JetStream bus fetches at most 250 events per delivery); time from bus ready (or its first delivery, if earlier) until each stub has the last seq.`],
    [6, `6: a log of ${formatCount(settings.restartPosts * 4)} events (${formatCount(settings.restartPosts)} posts, each with a comment created, moderated and updated), published through a bus as in figure 5. File log: that bus is stopped and one that pushes to query started on its database. JetStream: that bus stays up and query follows it itself (EVENT_DELIVERY=pull, long polls of GET /events). Query catches up from an empty DATA_DIR (spawn → every post on GET /posts with its comment settled, polled every 200 ms), is stopped with SIGTERM and started again on its state.db: spawn → first /readyz 200 (polled every 5 ms).`],
    [7, '7: VmHWM (the peak of the process\'s whole life) from /proc/<pid>/status of each process, read at the end of its figures; on JetStream also nats-server (printed only: not one of our services); in figure 5 also the bus that filled the log.'],
    [
      8,
      `8: a history of N events (N/4 posts, each with a comment created, moderated and updated; every event with its id, reactions with the ids the services derive), at ${commandLine.historyEvents.map(formatCount).join(' and ')} events, each size on both stores before the next size. Every process runs with the NODE_OPTIONS of its Deployment in infra/k8s (${describeHeapCaps()}). ` +
        `The VmRSS of each process is sampled from /proc/<pid>/status every ${settings.rssSampleMs} ms and the peak of each phase kept (VmHWM would carry over from the phases before). Phases: ` +
        `(a) publishing: a bus with no subscribers, the history through signed POST /events, ${formatCount(settings.publishBatch)} per request, one request at a time (JetStream: a fresh stream on a nats-server of the figure's own); ` +
        `(b) that bus stopped (SIGTERM) and a new one started on the log: spawn → first /readyz 200 (polled every 5 ms), RSS until ${settings.busSettleMs / 1000} s after ready, then its head checked (x-head-seq = N); ` +
        `(c) query from an empty DATA_DIR to its first /readyz 200 (query is ready once caught up with the bus; polled every 50 ms): on the file log the bus pushes to it (query also pulls on start), on JetStream query pulls (EVENT_DELIVERY=pull); events/s = N / (spawn → ready); ` +
        `(d) query stopped (SIGTERM) and started again on its state.db: spawn → first /readyz 200 (polled every 5 ms); ` +
        `(e) autocannon GET /posts?limit=${settings.historyPageLimit}, ${settings.connections} connections for ${settings.readSeconds} s (the first page checked first: ${settings.historyPageLimit} posts, the newest first, a next cursor); ` +
        `(f) one classic GET /posts, read to its end: its keys counted and every post's one comment checked settled; RSS while it is served. ` +
        `The targets on the bus's restart and on paged reads are set at ${formatCount(historyTargetEvents)} events and only printed at other sizes; "above ${formatCount(smallest ?? 0)} events" is a phase's peak at the larger size minus the same phase's peak at ${formatCount(smallest ?? 0)} on the same store.`,
    ],
  ];
  return lines.filter(([figure]) => figures.has(figure)).map(([, text]) => text);
}

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
/** A run of some figures only must not replace the full run's results. */
const resultsName = partialRun ? 'partial' : 'latest';
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
    const full = error instanceof Error ? error.message : String(error);
    const message = full.split('\n')[0]!;
    // The report keeps the first line; the rest (a service's last output, say) is for whoever runs it.
    log(`${name} on ${storeLabels[store]} FAILED: ${full.slice(0, 4_000)}`);
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

const countPosts = async (query: ServiceProcess) => Object.keys(await getJson<PostsView>(`${query.url}/posts`)).length;

const describeTopology = (t: StackTopology) => `eventStore ${t.eventStore}, ${t.busReplicas} bus, ${t.queryReplicas} query`;

// ---- figures 5, 6 and 8: a log filled through a bus; on JetStream, a server of the figure's own ----

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

interface Published {
  /** The seq of the last event: the log's head. */
  lastSeq: number;
  events: number;
  requests: number;
  ms: number;
}

/**
 * Publishes `events` through a running bus in order, `settings.publishBatch` per signed POST
 * /events, one request at a time (each answered once the batch is stored: committed to event-bus.db,
 * or acknowledged by JetStream). Throws once it has taken longer than `timeoutMs`; `progressEvery`
 * events it says how far it is.
 */
async function publishThroughBus(bus: ServiceProcess, events: Iterable<PublishRequest>, { timeoutMs, total, progressEvery }: { timeoutMs: number; total?: number; progressEvery?: number }): Promise<Published> {
  const startedAt = performance.now();
  let batch: PublishRequest[] = [];
  let published = 0;
  let lastSeq = 0;
  let requests = 0;
  let nextProgress = progressEvery ?? Number.POSITIVE_INFINITY;
  const send = async () => {
    const elapsedMs = performance.now() - startedAt;
    if (elapsedMs > timeoutMs) throw new Error(`publishing took longer than ${(timeoutMs / 1000).toFixed(0)} s (${formatCount(lastSeq)} events stored)`);
    const response = await signedFetch(`${bus.url}/events`, { method: 'POST', body: JSON.stringify(batch) }).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      if (!bus.running) throw new Error(`the bus exited while publishing (after seq ${lastSeq}): ${reason}\n${bus.output().slice(-2_000)}`);
      throw new Error(`POST /events failed after seq ${lastSeq}: ${reason}`, { cause: error });
    });
    requests += 1;
    if (response.status !== 201) throw new Error(`POST /events with ${batch.length} events answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
    const stored = (await response.json()) as Array<{ seq: number }>;
    lastSeq = stored.at(-1)?.seq ?? lastSeq;
    batch = [];
    if (lastSeq >= nextProgress) {
      nextProgress += progressEvery!;
      const seconds = (performance.now() - startedAt) / 1000;
      log(`  published ${formatCount(lastSeq)}${total === undefined ? '' : ` of ${formatCount(total)}`} events in ${seconds.toFixed(1)} s (${formatCount(Math.round(lastSeq / seconds))}/s)`);
    }
  };
  for (const event of events) {
    batch.push(event);
    published += 1;
    if (batch.length === settings.publishBatch) await send();
  }
  if (batch.length > 0) await send();
  if (lastSeq !== published) throw new Error(`the log ends at seq ${lastSeq} after ${published} events were published into an empty one`);
  return { lastSeq, events: published, requests, ms: performance.now() - startedAt };
}

interface Filled extends Published {
  /** The bus that published them, still running, without subscribers. */
  bus: ServiceProcess;
  /** SIGKILLs it now instead of at the end of the figure. */
  kill: () => Promise<void>;
}

/**
 * Starts a bus on the log in `env` (a DATA_DIR, or a stream) with no subscribers and publishes
 * `events` through it (see publishThroughBus): the log gets there the way the services fill it.
 */
async function fillThroughBus(defer: Defer, env: Record<string, string>, events: Iterable<PublishRequest>): Promise<Filled> {
  const bus = new ServiceProcess('event-bus', await freePort(), { ...env, SUBSCRIBERS: '' });
  const kill = defer(() => bus.kill());
  await bus.start();
  const published = await publishThroughBus(bus, events, { timeoutMs: settings.fillTimeoutMs });
  log(`log filled through the bus: ${formatCount(published.events)} events in ${published.requests} requests, ${(published.ms / 1000).toFixed(1)} s`);
  return { ...published, bus, kill };
}

/** SIGTERMs the bus that filled a log, so that another can start on it; throws if it did not exit cleanly. */
async function stopFillingBus(filled: Filled): Promise<void> {
  const exitCode = await filled.bus.stop();
  await filled.kill();
  if (exitCode !== 0) throw new Error(`the bus that filled the log exited with ${exitCode} on SIGTERM:\n${filled.bus.output().slice(-2_000)}`);
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
    const nats = store === 'jetstream' ? await startNats(defer) : undefined;
    if (nats) Object.assign(env, jetStreamEnv(nats));
    const filling = await fillThroughBus(defer, env, postEvents(events));
    const filled = { ...filling, peakMb: peakMemoryMb(filling.bus.pid) };
    // The bus that fans out starts on a log nobody else serves.
    await stopFillingBus(filling);
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
      filledThroughBus: { events: filled.events, requests: filled.requests, fillMs: filled.ms, busPeakMb: filled.peakMb },
    };
    const startNote = `the log was filled through a bus in ${(filled.ms / 1000).toFixed(1)} s, ${filled.requests} POSTs`;
    put(store, figureName, 'bus start with the log (spawn → ready)', readyAt - spawnedAt, 'ms', undefined, startNote);
    for (const s of perSubscriber) {
      const note = s.done ? `${s.seconds.toFixed(2)} s, ${Math.round(s.received / s.requests)} events/request` : `TIMED OUT at seq ${s.lastSeq}`;
      put(store, figureName, `events/s to ${s.name}`, s.eventsPerSecond, '/s', undefined, note);
    }
    put(store, memoryFigure, 'event-bus in figure 5', busPeak, 'MB', targets.peakMemoryMb);
    put(store, memoryFigure, 'event-bus filling the log in figure 5', filled.peakMb, 'MB', targets.peakMemoryMb, `${filled.requests} POSTs of ${formatCount(settings.publishBatch)}`);
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
    const nats = store === 'jetstream' ? await startNats(defer) : undefined;
    if (nats) Object.assign(busEnv, jetStreamEnv(nats));
    const filled = await fillThroughBus(defer, busEnv, blogHistory(settings.restartPosts));
    const { events, ms: fillMs } = filled;
    // On JetStream the bus that filled the stream stays up: query follows it with long polls. On
    // the file log the bus pushes to query: one with query as its subscriber takes over the database.
    let bus = filled.bus;
    if (store === 'file') {
      await stopFillingBus(filled);
      const pushing = new ServiceProcess('event-bus', await freePort(), { ...busEnv, SUBSCRIBERS: `query=http://127.0.0.1:${queryPort}/events`, RETRY_MAX_DELAY_MS: '500' });
      defer(() => pushing.kill());
      await pushing.start();
      bus = pushing;
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
      fillMs,
      catchUpMs,
      restartMs,
      postsAfterRestart: postsAfter,
    };
    const figureName = `6. Query restart after ${(settings.restartPosts * 4).toLocaleString('en-US')} events`;
    const delivery = store === 'jetstream' ? 'query pulls' : 'bus pushes';
    const note = postsAfter === settings.restartPosts ? `${formatCount(postsAfter)} posts back` : `only ${formatCount(postsAfter)} posts back`;
    put(store, figureName, 'first catch-up (spawn → all on /posts)', catchUpMs, 'ms', undefined, delivery);
    put(store, figureName, 'restart (spawn → /readyz 200)', restartMs, 'ms', targets.restartMs, note);
    put(store, memoryFigure, 'event-bus in figure 6', busPeak, 'MB', targets.peakMemoryMb, store === 'jetstream' ? 'it also filled the stream' : undefined);
    put(store, memoryFigure, 'query in figure 6, first catch-up', firstPeak, 'MB', targets.peakMemoryMb);
    put(store, memoryFigure, 'query in figure 6, after restart', restartedPeak, 'MB', targets.peakMemoryMb);
    if (nats) put(store, memoryFigure, 'nats-server in figure 6', natsPeak, 'MB', undefined, 'not one of our services');
  });
}

// ---- figure 8: history scale ----

type ProcessList = () => ReadonlyArray<{ name: string; pid: number | undefined }>;

/** Runs `body` while sampling the VmRSS of `processes` (see RssSampler). */
async function sampled<T>(processes: ProcessList, body: () => Promise<T>): Promise<{ value: T; memory: PhaseMemory }> {
  const sampler = await RssSampler.start(processes, settings.rssSampleMs);
  let value: T;
  try {
    value = await body();
  } catch (error) {
    await sampler.stop().catch(() => undefined);
    throw error;
  }
  return { value, memory: await sampler.stop() };
}

/**
 * Spawns `service` and returns the time from spawn to its first /readyz 200, polled every
 * `pollMs`. start() is only asked for /healthz: a catch-up may take far longer than its 15 s.
 * Throws after `timeoutMs`, or as soon as the process, or one it depends on (`dependsOn`), exits.
 */
async function spawnUntilReady(service: ServiceProcess, pollMs: number, timeoutMs: number, dependsOn: ServiceProcess[] = []): Promise<number> {
  const spawnedAt = performance.now();
  let startFailed: Error | undefined;
  const alive = service.start({ waitUntil: 'alive', timeoutMs }).catch((error: unknown) => {
    startFailed = error instanceof Error ? error : new Error(String(error));
  });
  for (;;) {
    try {
      const response = await fetch(`${service.url}/readyz`, { signal: AbortSignal.timeout(5_000) });
      await response.arrayBuffer();
      if (response.ok) {
        const readyMs = performance.now() - spawnedAt;
        await alive;
        return readyMs;
      }
    } catch {
      // not listening yet
    }
    if (startFailed) throw startFailed;
    for (const child of [service, ...dependsOn]) {
      if (!child.running) throw new Error(`${child.name} exited before ${service.name} was ready:\n${child.output().slice(-2_000)}`);
    }
    if (performance.now() - spawnedAt > timeoutMs) throw new Error(`${service.name} was not ready within ${(timeoutMs / 1000).toFixed(0)} s of its spawn:\n${service.output().slice(-2_000)}`);
    await sleep(pollMs);
  }
}

/** The bus's head (x-head-seq of a signed GET /events). */
async function busHead(bus: ServiceProcess): Promise<number> {
  const response = await signedFetch(`${bus.url}/events?after=0&limit=1`);
  await response.arrayBuffer();
  const head = Number(response.headers.get(headSeqHeader));
  if (!response.ok || !Number.isSafeInteger(head)) throw new Error(`GET /events on the bus answered ${response.status} with ${headSeqHeader} ${response.headers.get(headSeqHeader)}`);
  return head;
}

/** query's position in the log, from its /metrics (projection_last_seq); undefined if it cannot be read. */
async function projectedSeq(service: ServiceProcess): Promise<number | undefined> {
  try {
    const response = await fetch(`${service.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const match = /^projection_last_seq(?:\{[^}]*\})? (\d+)/m.exec(await response.text());
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** How long a step that goes through the whole history may take: `settings.historyMinRate` on average, a minute at least. */
const historyStepBoundMs = (events: number) => Math.max(60_000, (events / settings.historyMinRate) * 1_000);

const historyFigureName = (events: number) => `8. History scale (${formatCount(events)} events, ${formatCount(events / 4)} posts)`;

type BusPhase = 'publishing' | 'restart' | 'catchUp';
const busPhaseMetric: Record<BusPhase, string> = {
  publishing: 'event-bus peak RSS while publishing',
  restart: `event-bus peak RSS after a restart (spawn → ready + ${settings.busSettleMs / 1000} s)`,
  catchUp: 'event-bus peak RSS while query catches up',
};
/** The bus's peak per phase, per store and size: a larger history is compared with the smallest. */
const historyBusPeaks: Record<Store, Map<number, Partial<Record<BusPhase, number>>>> = { file: new Map(), jetstream: new Map() };

async function historyScale(store: Store, events: number): Promise<void> {
  const posts = events / 4;
  const figureName = historyFigureName(events);
  const [smallest] = commandLine.historyEvents;
  const atTargetSize = events >= historyTargetEvents;
  const busPeaks: Partial<Record<BusPhase, number>> = {};
  historyBusPeaks[store].set(events, busPeaks);
  const stepBoundMs = historyStepBoundMs(events);
  const figureDetails: Record<string, unknown> = { events, posts };
  details[store][`historyScale${events}`] = figureDetails;

  /** Adds a phase's peak of the bus, and at a larger size how far above the smallest size it is. */
  const putBusPeak = (phase: BusPhase, memory: PhaseMemory, note?: string) => {
    const peak = memory.peakMb.get('event-bus');
    busPeaks[phase] = peak;
    put(store, figureName, busPhaseMetric[phase], peak, 'MB', targets.historyBusRssMb, note);
    const base = smallest !== undefined && smallest < events ? historyBusPeaks[store].get(smallest)?.[phase] : undefined;
    if (base !== undefined && peak !== undefined) {
      put(store, figureName, `${busPhaseMetric[phase]}: above ${formatCount(smallest!)} events`, peak - base, 'MB', targets.historyBusRssGrowthMb, `${base.toFixed(1)} MB there`);
    }
  };
  const samplingNote = (memory: PhaseMemory) => (memory.maxGapMs > settings.rssSampleMs * 4 ? `samples up to ${memory.maxGapMs.toFixed(0)} ms apart` : undefined);
  const natsPeaks: number[] = [];
  const keepNatsPeak = (memory: PhaseMemory) => {
    const peak = memory.peakMb.get('nats-server');
    if (peak !== undefined) natsPeaks.push(peak);
  };

  await scoped(async (defer) => {
    const nodeOptions = { bus: deploymentNodeOptions('event-bus'), query: deploymentNodeOptions('query') };
    figureDetails.nodeOptions = nodeOptions;
    const busData = await makeTempDir('blog-bench-history-bus-');
    defer(() => busData.remove());
    const queryData = await makeTempDir('blog-bench-history-query-');
    defer(() => queryData.remove());
    const queryPort = await freePort();
    const busEnv: Record<string, string> = { LOG_LEVEL: 'warn', DATA_DIR: busData.path, EVENT_BUS_SECRET: testBusSecret, NODE_OPTIONS: nodeOptions.bus };
    const nats = store === 'jetstream' ? await startNats(defer) : undefined;
    if (nats) Object.assign(busEnv, jetStreamEnv(nats));
    const natsPid = nats ? natsServerPid(nats.port) : undefined;
    const withNats = (list: Array<{ name: string; pid: number | undefined }>) => (natsPid === undefined ? list : [...list, { name: 'nats-server', pid: natsPid }]);

    try {
      // (a) Publishing, through a bus with no subscribers.
      const filling = new ServiceProcess('event-bus', await freePort(), { ...busEnv, SUBSCRIBERS: '' });
      const killFilling = defer(() => filling.kill());
      await filling.start();
      log(`publishing ${formatCount(events)} events through the bus (${formatCount(settings.publishBatch)} per request)...`);
      const fill = await sampled(
        () => withNats([{ name: 'event-bus', pid: filling.pid }]),
        () => publishThroughBus(filling, blogHistory(posts), { timeoutMs: stepBoundMs, total: events, progressEvery: Math.max(events / 10, settings.publishBatch) }),
      );
      keepNatsPeak(fill.memory);
      figureDetails.publishing = { ...fill.value, memory: Object.fromEntries(fill.memory.peakMb), maxSampleGapMs: fill.memory.maxGapMs };
      put(store, figureName, `publishing (signed POST /events, ${formatCount(settings.publishBatch)} per request)`, fill.value.events / (fill.value.ms / 1000), '/s', undefined, `${(fill.value.ms / 1000).toFixed(1)} s, ${formatCount(fill.value.requests)} requests`);
      putBusPeak('publishing', fill.memory, samplingNote(fill.memory));
      const fillExit = await filling.stop();
      await killFilling();
      if (fillExit !== 0) throw new Error(`the bus that published exited with ${fillExit} on SIGTERM:\n${filling.output().slice(-2_000)}`);

      // (b) A new bus on that log. On the file log it pushes to query (not up yet: its deliveries wait and retry).
      const bus = new ServiceProcess('event-bus', await freePort(), {
        ...busEnv,
        SUBSCRIBERS: store === 'file' ? `query=http://127.0.0.1:${queryPort}/events` : '',
        RETRY_MAX_DELAY_MS: '500',
      });
      defer(() => bus.kill());
      log(`restarting the bus on ${formatCount(events)} events...`);
      const restart = await sampled(
        () => withNats([{ name: 'event-bus', pid: bus.pid }]),
        async () => {
          const readyMs = await spawnUntilReady(bus, 5, stepBoundMs);
          await sleep(settings.busSettleMs);
          return readyMs;
        },
      );
      keepNatsPeak(restart.memory);
      const head = await busHead(bus);
      figureDetails.busRestart = { readyMs: restart.value, head, memory: Object.fromEntries(restart.memory.peakMb) };
      put(store, figureName, 'event-bus restart (spawn → /readyz 200)', restart.value, 'ms', atTargetSize ? targets.historyBusRestartMs : undefined);
      putBusPeak('restart', restart.memory, samplingNote(restart.memory));
      if (head !== fill.value.lastSeq) throw new Error(`the restarted bus's log ends at seq ${head}, not ${fill.value.lastSeq}`);

      // (b') JetStream only: a new bus replica on an empty DATA_DIR (a new pod's emptyDir) builds its
      // id index from the stream before it is ready: what its startup probe's budget must cover.
      if (store === 'jetstream') {
        const freshData = await makeTempDir('blog-bench-history-fresh-bus-');
        defer(() => freshData.remove());
        const fresh = new ServiceProcess('event-bus', await freePort(), { ...busEnv, DATA_DIR: freshData.path, SUBSCRIBERS: '' });
        const killFresh = defer(() => fresh.kill());
        log(`a new bus replica indexing the ${formatCount(events)} events of the stream...`);
        const rebuild = await sampled(() => withNats([{ name: 'event-bus', pid: fresh.pid }]), () => spawnUntilReady(fresh, 5, stepBoundMs));
        keepNatsPeak(rebuild.memory);
        figureDetails.busIndexRebuild = { readyMs: rebuild.value, memory: Object.fromEntries(rebuild.memory.peakMb) };
        put(store, figureName, 'event-bus on an empty DATA_DIR, indexing the stream (spawn → /readyz 200)', rebuild.value, 'ms', undefined, `${formatCount(Math.round(events / (rebuild.value / 1000)))} events/s`);
        put(store, figureName, 'event-bus peak RSS indexing the stream', rebuild.memory.peakMb.get('event-bus'), 'MB', targets.historyBusRssMb, samplingNote(rebuild.memory));
        await fresh.stop();
        await killFresh();
      }

      // (c) query from an empty DATA_DIR: ready once caught up.
      const query = new ServiceProcess('query', queryPort, {
        LOG_LEVEL: 'warn',
        DATA_DIR: queryData.path,
        EVENT_BUS_URL: bus.url,
        EVENT_BUS_SECRET: testBusSecret,
        NODE_OPTIONS: nodeOptions.query,
        ...(store === 'jetstream' ? { EVENT_DELIVERY: 'pull' } : {}),
      });
      defer(() => query.kill());
      log(`query catching up from empty (${store === 'file' ? 'the bus pushes' : 'query pulls'})...`);
      const progress = setInterval(() => {
        void projectedSeq(query).then((seq) => log(`  query at ${seq === undefined ? '?' : formatCount(seq)} of ${formatCount(events)} events`));
      }, 10_000);
      const catchUp = await sampled(
        () => withNats([
          { name: 'event-bus', pid: bus.pid },
          { name: 'query', pid: query.pid },
        ]),
        () => spawnUntilReady(query, 50, stepBoundMs, [bus]),
      ).finally(() => clearInterval(progress));
      keepNatsPeak(catchUp.memory);
      const caughtUpTo = await projectedSeq(query);
      const catchUpRate = events / (catchUp.value / 1000);
      figureDetails.queryCatchUp = { readyMs: catchUp.value, eventsPerSecond: catchUpRate, lastSeq: caughtUpTo, delivery: store === 'file' ? 'push' : 'pull', memory: Object.fromEntries(catchUp.memory.peakMb) };
      const catchUpNote = [`${(catchUp.value / 1000).toFixed(1)} s`, store === 'file' ? 'bus pushes' : 'query pulls', caughtUpTo !== undefined && caughtUpTo < events ? `ONLY at seq ${caughtUpTo} when ready` : undefined].filter(Boolean).join(', ');
      put(store, figureName, 'query from empty to ready (spawn → /readyz 200)', catchUpRate, '/s', targets.historyCatchUpRate, catchUpNote);
      put(store, figureName, 'query peak RSS from empty to ready', catchUp.memory.peakMb.get('query'), 'MB', targets.historyQueryRssMb, samplingNote(catchUp.memory));
      putBusPeak('catchUp', catchUp.memory, samplingNote(catchUp.memory));
      log(`query ready after ${(catchUp.value / 1000).toFixed(1)} s (${formatCount(Math.round(catchUpRate))} events/s)`);

      // (d) query restarted on its own state.
      const queryExit = await query.stop();
      if (queryExit !== 0) throw new Error(`query exited with ${queryExit} on SIGTERM:\n${query.output().slice(-2_000)}`);
      const queryRestart = await sampled(() => [{ name: 'query', pid: query.pid }], () => spawnUntilReady(query, 5, settings.historyStepTimeoutMs));
      figureDetails.queryRestart = { readyMs: queryRestart.value, memory: Object.fromEntries(queryRestart.memory.peakMb) };
      put(store, figureName, 'query restart on its state (spawn → /readyz 200)', queryRestart.value, 'ms', targets.historyQueryRestartMs);
      put(store, figureName, 'query peak RSS restarting (spawn → ready)', queryRestart.memory.peakMb.get('query'), 'MB', targets.historyQueryRssMb, samplingNote(queryRestart.memory));

      // (e) Paged reads: the first page, checked, then under load.
      const pageUrl = `${query.url}/posts?limit=${settings.historyPageLimit}`;
      const page = await getJson<PostsPage>(pageUrl);
      const expectedNewest = `Bench post ${posts - 1}`;
      if (!Array.isArray(page.posts) || page.posts.length !== Math.min(settings.historyPageLimit, posts) || page.posts[0]?.title !== expectedNewest || (posts > settings.historyPageLimit && typeof page.nextCursor !== 'string')) {
        throw new Error(`GET /posts?limit=${settings.historyPageLimit} is not the newest page (${page.posts?.length} posts, the first "${page.posts?.[0]?.title}" instead of "${expectedNewest}", nextCursor ${page.nextCursor})`);
      }
      log(`GET /posts?limit=${settings.historyPageLimit}, ${settings.connections} connections for ${settings.readSeconds} s...`);
      const pages = await sampled(() => [{ name: 'query', pid: query.pid }], () => closedLoop({ url: pageUrl, method: 'GET', connections: settings.connections, durationSeconds: settings.readSeconds }));
      figureDetails.pages = { ...pages.value, memory: Object.fromEntries(pages.memory.peakMb) };
      const pageMetric = `GET /posts?limit=${settings.historyPageLimit} (c${settings.connections}, ${settings.readSeconds} s)`;
      put(store, figureName, `${pageMetric}: throughput`, pages.value.throughput, '/s', atTargetSize ? targets.historyPageThroughput : undefined, pages.value.failed > 0 ? `${pages.value.failed} failed` : undefined);
      put(store, figureName, `${pageMetric}: p50 latency`, pages.value.latency.p50, 'ms');
      put(store, figureName, `${pageMetric}: p99 latency`, pages.value.latency.p99, 'ms', atTargetSize ? targets.historyPageP99 : undefined);
      put(store, figureName, `${pageMetric}: query peak RSS`, pages.memory.peakMb.get('query'), 'MB');

      // (f) The classic whole map, read to its end.
      log(`classic GET /posts: the whole map of ${formatCount(posts)} posts...`);
      const whole = await sampled(
        () => [{ name: 'query', pid: query.pid }],
        async () => {
          const startedAt = performance.now();
          const response = await fetch(`${query.url}/posts`, { signal: AbortSignal.timeout(settings.historyStepTimeoutMs) });
          if (!response.ok) throw new Error(`GET /posts answered ${response.status}`);
          const text = await response.text();
          return { text, ms: performance.now() - startedAt };
        },
      );
      const view = JSON.parse(whole.value.text) as PostsView;
      const keys = Object.keys(view).length;
      const settled = Object.values(view).filter((post) => post.comments.length === 1 && post.comments[0]!.status !== 'pending').length;
      const megabytes = Buffer.byteLength(whole.value.text) / 1024 ** 2;
      figureDetails.wholeMap = { posts: keys, settledComments: settled, megabytes, ms: whole.value.ms, memory: Object.fromEntries(whole.memory.peakMb) };
      const wholeNote = [`${megabytes.toFixed(1)} MB in ${(whole.value.ms / 1000).toFixed(2)} s`, settled === posts ? undefined : `only ${formatCount(settled)} with their comment settled`].filter(Boolean).join(', ');
      put(store, figureName, 'classic GET /posts: posts in the whole map', keys, '', { kind: 'min', value: posts }, wholeNote);
      const before = whole.memory.firstMb.get('query');
      const wholeRssNote = [before === undefined ? undefined : `${before.toFixed(0)} MB when asked`, samplingNote(whole.memory)].filter(Boolean).join(', ');
      put(store, figureName, 'classic GET /posts: query peak RSS while serving it', whole.memory.peakMb.get('query'), 'MB', targets.historyWholeMapRssMb, wholeRssNote);
    } finally {
      if (nats) put(store, figureName, 'nats-server peak RSS over the figure', natsPeaks.length > 0 ? Math.max(...natsPeaks) : undefined, 'MB', undefined, 'not one of our services');
    }
  });
}

// ---- the run ----

async function main(): Promise<number> {
  const machine = machineInfo();
  log(`${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}, kernel ${machine.kernel}`);
  const measured = stores.filter((store) => runs[store].ran);
  if (!runs.jetstream.ran) log(`no nats-server at ${natsServerPath}: the JetStream column is not run`);
  else log(`JetStream: ${runs.jetstream.server ?? natsServerPath}`);
  if (partialRun) log(`only ${[...selected].join(', ')} (figures ${[...figuresRun].sort((a, b) => a - b).join(', ')}); results go to bench/results/${resultsName}.{md,json}`);
  // Each figure on every store before the next figure: a machine that gets busier mid-run skews both columns alike.
  if (selected.has('main')) for (const store of measured) await figure(store, 'Figures 1–4 (main stack)', [...figureGroups.main], () => mainStack(store));
  if (selected.has('fan-out')) for (const store of measured) await figure(store, '5. Bus fan-out', [...figureGroups['fan-out']], () => fanOut(store));
  if (selected.has('query-restart')) for (const store of measured) await figure(store, '6. Query restart', [...figureGroups['query-restart']], () => queryRestart(store));
  if (selected.has('history-scale')) {
    for (const events of commandLine.historyEvents) {
      for (const store of measured) await figure(store, historyFigureName(events), [...figureGroups['history-scale']], () => historyScale(store, events));
    }
  }
  await cleanupAll();
  if (aborting) return 1;

  const report: Report = {
    date: new Date().toISOString(),
    command: commandLine.command,
    machine,
    runs,
    methods: methodsFor(figuresRun),
    rows,
    errors,
    details,
    totalSeconds: (performance.now() - started) / 1000,
  };
  const markdown = renderMarkdown(report);
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, `${resultsName}.json`), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(resultsDir, `${resultsName}.md`), markdown);
  process.stdout.write(`\n${markdown}\n`);
  const missed = measured.flatMap((store) => rows.filter((r) => r[store]?.ok === false).map(() => store));
  const missedText = missed.length === 0 ? 'all targets met' : measured.map((store) => `${missed.filter((s) => s === store).length} target(s) MISSED on ${storeLabels[store]}`).join(', ');
  log(`done: ${missedText}${errors.length > 0 ? `, ${errors.length} figure(s) could not be measured` : ''}${runs.jetstream.ran ? '' : ', JetStream not run (no nats-server)'}; wrote ${path.relative(process.cwd(), resultsDir)}/${resultsName}.{md,json}`);
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
const historyBudgetMs = 120_000 + commandLine.historyEvents.reduce((total, events) => total + events * settings.historyBudgetMsPerEvent, 0);
const wholeRunTimeoutMs = [...selected].reduce((total, group) => total + (group === 'history-scale' ? historyBudgetMs : settings.wholeRunTimeoutMs[group]), 0);
setTimeout(() => void abort(`the whole run took longer than ${wholeRunTimeoutMs / 1000} s`, 1), wholeRunTimeoutMs).unref();

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
