/**
 * The numbers side of the benchmark: percentiles, memory readings, machine info, and the
 * markdown/JSON report. No I/O against the services here.
 */
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
    mean: sorted.length > 0 ? sum / sorted.length : Number.NaN,
  };
}

/** Peak resident memory (VmHWM) of a running process in MB, or undefined if it cannot be read. */
export function peakMemoryMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Peak VmRSS per process over one phase; `maxGapMs` says how evenly the samples came. */
export interface PhaseMemory {
  peakMb: Map<string, number>;
  /** Each process's first reading in the phase: what it brought along from before. */
  firstMb: Map<string, number>;
  samples: number;
  maxGapMs: number;
}

/** The sampling loop, in a worker thread of its own (plain JavaScript: it is evaluated, not imported). */
const samplerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
let processes = [];
const peaks = new Map();
const firsts = new Map();
let samples = 0;
let maxGapMs = 0;
let lastAt = performance.now();
function sample() {
  const now = performance.now();
  maxGapMs = Math.max(maxGapMs, now - lastAt);
  lastAt = now;
  samples += 1;
  for (const { name, pid } of processes) {
    try {
      const match = /^VmRSS:\\s+(\\d+)\\s+kB$/m.exec(readFileSync('/proc/' + pid + '/status', 'utf8'));
      if (!match) continue;
      const mb = Number(match[1]) / 1024;
      peaks.set(name, Math.max(peaks.get(name) ?? 0, mb));
      if (!firsts.has(name)) firsts.set(name, mb);
    } catch {
      // exited meanwhile
    }
  }
}
const timer = setInterval(sample, workerData.intervalMs);
parentPort.postMessage({ type: 'sampling' });
parentPort.on('message', (message) => {
  if (message.type === 'processes') {
    processes = message.processes;
    sample();
    return;
  }
  clearInterval(timer);
  sample();
  parentPort.postMessage({ type: 'stopped', peakMb: [...peaks], firstMb: [...firsts], samples, maxGapMs });
});
`;

/**
 * Samples the VmRSS of some processes every `intervalMs` until stopped. VmHWM would be simpler but
 * is the peak of the process's whole life, so it cannot tell one phase from the one before it. The
 * samples are taken in a worker thread: the bench's own event loop is busy during the very phases
 * measured (a load generator, a large response), and a late sample can miss a peak. `processes` is
 * asked again every interval: a process restarted meanwhile is followed by its new pid.
 */
export class RssSampler {
  private readonly worker: Worker;
  private readonly processes: () => ReadonlyArray<{ name: string; pid: number | undefined }>;
  private readonly refreshTimer: NodeJS.Timeout;
  private watched = '';

  private constructor(processes: () => ReadonlyArray<{ name: string; pid: number | undefined }>, intervalMs: number) {
    this.processes = processes;
    this.worker = new Worker(samplerSource, { eval: true, workerData: { intervalMs } });
    // A phase that throws before stop() must not keep the bench alive.
    this.worker.unref();
    this.refresh();
    this.refreshTimer = setInterval(() => this.refresh(), intervalMs);
    this.refreshTimer.unref();
  }

  /** Resolves once the worker samples: its thread takes a moment to boot, and the phase must not start before. */
  static async start(processes: () => ReadonlyArray<{ name: string; pid: number | undefined }>, intervalMs = 50): Promise<RssSampler> {
    const sampler = new RssSampler(processes, intervalMs);
    try {
      await once(sampler.worker, 'message', { signal: AbortSignal.timeout(10_000) });
    } catch (error) {
      clearInterval(sampler.refreshTimer);
      await sampler.worker.terminate();
      throw new Error('the memory sampler did not start', { cause: error });
    }
    return sampler;
  }

  /** Takes a last sample, stops, and returns the peaks. */
  async stop(): Promise<PhaseMemory> {
    clearInterval(this.refreshTimer);
    this.refresh();
    try {
      const reply = once(this.worker, 'message', { signal: AbortSignal.timeout(5_000) });
      this.worker.postMessage({ type: 'stop' });
      const [result] = (await reply) as [{ type: 'stopped'; peakMb: Array<[string, number]>; firstMb: Array<[string, number]>; samples: number; maxGapMs: number }];
      return { peakMb: new Map(result.peakMb), firstMb: new Map(result.firstMb), samples: result.samples, maxGapMs: result.maxGapMs };
    } finally {
      await this.worker.terminate();
    }
  }

  /** Tells the worker which pids to read, when that changed. */
  private refresh(): void {
    const list = this.processes().filter((p) => p.pid !== undefined);
    const watched = JSON.stringify(list);
    if (watched === this.watched) return;
    this.watched = watched;
    this.worker.postMessage({ type: 'processes', processes: list });
  }
}

/**
 * The pid of the nats-server listening on `port`, found in /proc (NatsServer keeps its child
 * process to itself), for its memory reading; undefined if there is none.
 */
export function natsServerPid(port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!path.basename(argv[0] ?? '').startsWith('nats-server')) continue;
      const flag = argv.indexOf('-p');
      if (flag !== -1 && argv[flag + 1] === String(port)) return Number(entry);
    } catch {
      // gone already, or not ours to read
    }
  }
  return undefined;
}

export interface MachineInfo {
  cpuModel: string;
  cpuCount: number;
  totalMemoryGb: number;
  node: string;
  os: string;
  kernel: string;
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  loadAverage: number;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.arch()}`,
    kernel: os.release(),
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

export interface Target {
  /** 'min': measured must be at least `value`; 'max': at most. */
  kind: 'min' | 'max';
  value: number;
}

/** Where the bus keeps its log: each figure is measured once per store. */
export type Store = 'file' | 'jetstream';
export const stores: readonly Store[] = ['file', 'jetstream'];
export const storeLabels: Record<Store, string> = { file: 'file log', jetstream: 'JetStream' };

/** One store's reading of a row. */
export interface Measurement {
  /** undefined when it could not be read (see `note`). */
  value: number | undefined;
  /** true/false against the row's target; absent when there is no target (printed only). */
  ok?: boolean;
  note?: string;
}

/**
 * One line of the table: a measured quantity, its target if the issue sets one, and what each
 * store measured (a row that applies to one store only, such as nats-server's memory, has one).
 */
export interface Row {
  figure: string;
  metric: string;
  unit: string;
  target?: Target;
  file?: Measurement;
  jetstream?: Measurement;
}

export function measurement(value: number | undefined, target?: Target, note?: string): Measurement {
  const ok = target === undefined ? undefined : value !== undefined && !Number.isNaN(value) && (target.kind === 'min' ? value >= target.value : value <= target.value);
  return { value, ...(ok === undefined ? {} : { ok }), ...(note ? { note } : {}) };
}

/** Adds `store`'s reading to the row `figure: metric` (made on first use, in order of first use). */
export function record(rows: Row[], store: Store, figure: string, metric: string, value: number | undefined, unit: string, target?: Target, note?: string): void {
  let line = rows.find((r) => r.figure === figure && r.metric === metric);
  if (!line) {
    line = { figure, metric, unit, ...(target ? { target } : {}) };
    rows.push(line);
  }
  line[store] = measurement(value, target, note);
}

export function formatNumber(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return 'n/a';
  const digits = unit === 'ms' ? (value < 10 ? 2 : 1) : unit === 'MB' || unit === 's' ? 1 : 0;
  const text = value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return unit === '/s' ? `${text}/s` : unit === '' ? text : `${text} ${unit}`;
}

function formatTarget(target: Target | undefined, unit: string): string {
  if (target === undefined) return '— (printed only)';
  const text = target.value.toLocaleString('en-US');
  return `${target.kind === 'min' ? '≥' : '≤'} ${unit === '/s' ? `${text}/s` : unit === '' ? text : `${text} ${unit}`}`;
}

const verdict = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'pass' : '**MISS**');

/** Rows in figure order (1, 2, ... 8), keeping the order within a figure. */
export const figureNumber = (r: Pick<Row, 'figure'>) => Number.parseInt(r.figure, 10) || 99;

/** What a store's cell says when it has no reading: not run at all, failed, or not applicable. */
function missingCell(report: Pick<Report, 'runs' | 'errors'>, r: Row, store: Store): string {
  const run = report.runs[store];
  if (!run.ran) return `not run (${run.notRunReason ?? 'skipped'})`;
  if (report.errors.some((e) => e.store === store && e.figures.includes(figureNumber(r)))) return 'not measured (see below)';
  return '—';
}

export function markdownTable(report: Pick<Report, 'rows' | 'runs' | 'errors'>): string {
  const lines = ['| figure | file log | JetStream | target | ok (file) | ok (JetStream) |', '| --- | --- | --- | --- | --- | --- |'];
  for (const r of [...report.rows].sort((a, b) => figureNumber(a) - figureNumber(b))) {
    const cells = stores.map((store) => {
      const m = r[store];
      return m ? formatNumber(m.value, r.unit) + (m.note ? ` (${m.note})` : '') : missingCell(report, r, store);
    });
    const oks = stores.map((store) => verdict(r[store]?.ok));
    lines.push(`| ${r.figure}: ${r.metric} | ${cells.join(' | ')} | ${formatTarget(r.target, r.unit)} | ${oks.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** How one store's run was set up, and whether it ran. */
export interface StoreRun {
  label: string;
  /** The `StackTopology` figures 1–4 run on (figures 5, 6 and 8 start their own processes, see the methods). */
  topology: { eventStore: string; busReplicas: number; queryReplicas: number };
  ran: boolean;
  notRunReason?: string;
  /** What a 201 waits for on this store. */
  durability: string;
  /** e.g. the nats-server version. */
  server?: string;
}

export interface Report {
  date: string;
  /** How the run was started, e.g. `pnpm bench --only history-scale`. */
  command: string;
  machine: MachineInfo;
  runs: Record<Store, StoreRun>;
  /** How each figure is measured, one line per figure. */
  methods: string[];
  rows: Row[];
  /** Figures that could not be measured at all on a store, with the reason and the figure numbers they cover. */
  errors: Array<{ store: Store; figure: string; figures: number[]; message: string }>;
  /** Everything measured, with the raw summaries, per store, for the JSON file. */
  details: Record<Store, Record<string, unknown>>;
  totalSeconds: number;
}

/** "file log" / "JetStream" / "file log, JetStream": the stores on which a row missed its target. */
const missedOn = (r: Row) => stores.filter((store) => r[store]?.ok === false).map((store) => storeLabels[store]);

export function renderMarkdown(report: Report): string {
  const { machine } = report;
  const missed = report.rows.filter((r) => missedOn(r).length > 0);
  const topology = (run: StoreRun) =>
    `\`{ eventStore: '${run.topology.eventStore}', busReplicas: ${run.topology.busReplicas}, queryReplicas: ${run.topology.queryReplicas} }\``;
  const lines = [
    '# Benchmark results',
    '',
    `Run ${report.date} in ${report.totalSeconds.toFixed(0)} s with \`${report.command}\`.`,
    '',
    `- Machine: ${machine.cpuCount} × ${machine.cpuModel}, ${machine.totalMemoryGb} GB RAM, ${machine.os}, kernel ${machine.kernel}, Node ${machine.node}`,
    `- Load average (1 min) when the run started: ${machine.loadAverage}${machine.loadAverage > machine.cpuCount / 2 ? ' — the machine was busy with other work, so these figures understate what the services can do (see the generator lag in figures 3–4)' : ''}`,
    '- Every service runs as its own process on 127.0.0.1 (as `@blog/testing` starts them), the load generators in the bench process. Each figure is measured on the file log, then on JetStream, before the next figure starts.',
    ...stores.map((store) => {
      const run = report.runs[store];
      const head = `- ${run.label}: stack topology ${topology(run)}${run.server ? ` (${run.server})` : ''}`;
      return run.ran ? `${head}. Durability: ${run.durability}` : `${head}: not run (${run.notRunReason ?? 'skipped'}).`;
    }),
    '',
    markdownTable(report),
    '',
    missed.length === 0 ? 'All targets met (on every store that ran).' : `Missed targets (${missed.length} rows): ${missed.map((r) => `${r.figure}: ${r.metric} (${missedOn(r).join(', ')})`).join('; ')}.`,
  ];
  lines.push('', 'How each figure is measured:', '', ...report.methods.map((method) => `- ${method}`));
  if (report.errors.length > 0) {
    lines.push('', 'Figures that could not be measured:', ...report.errors.map((e) => `- ${e.figure} on ${storeLabels[e.store]}: ${e.message}`));
  }
  return `${lines.join('\n')}\n`;
}
