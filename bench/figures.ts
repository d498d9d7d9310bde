/**
 * The numbers side of the benchmark: percentiles, memory readings, machine info, and the
 * markdown/JSON report. No I/O against the services here.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

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

/** One line of the table: a measured quantity, its target if the issue sets one, and the verdict. */
export interface Row {
  figure: string;
  metric: string;
  /** undefined when the figure could not be measured (see `note`). */
  value: number | undefined;
  unit: string;
  target?: Target;
  /** true/false against the target; undefined when there is no target (printed only). */
  ok?: boolean;
  note?: string;
}

export function row(figure: string, metric: string, value: number | undefined, unit: string, target?: Target, note?: string): Row {
  const ok = target === undefined ? undefined : value !== undefined && !Number.isNaN(value) && (target.kind === 'min' ? value >= target.value : value <= target.value);
  return { figure, metric, value, unit, ...(target ? { target } : {}), ...(ok === undefined ? {} : { ok }), ...(note ? { note } : {}) };
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
  return `${target.kind === 'min' ? '≥' : '≤'} ${unit === '/s' ? `${text}/s` : `${text} ${unit}`}`;
}

const verdict = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'pass' : '**MISS**');

/** Rows in figure order (1, 2, ... 7), keeping the order within a figure. */
const figureNumber = (r: Row) => Number.parseInt(r.figure, 10) || 99;

export function markdownTable(rows: readonly Row[]): string {
  const lines = ['| figure | measured | target | ok |', '| --- | --- | --- | --- |'];
  for (const r of [...rows].sort((a, b) => figureNumber(a) - figureNumber(b))) {
    const measured = formatNumber(r.value, r.unit) + (r.note ? ` (${r.note})` : '');
    lines.push(`| ${r.figure}: ${r.metric} | ${measured} | ${formatTarget(r.target, r.unit)} | ${verdict(r.ok)} |`);
  }
  return lines.join('\n');
}

export interface Report {
  date: string;
  machine: MachineInfo;
  durability: string;
  /** How each figure is measured, one line per figure. */
  methods: string[];
  rows: Row[];
  /** Figures that could not be measured at all, with the reason. */
  errors: Array<{ figure: string; message: string }>;
  /** Everything measured, with the raw summaries, for the JSON file. */
  details: Record<string, unknown>;
  totalSeconds: number;
}

export function renderMarkdown(report: Report): string {
  const { machine } = report;
  const missed = report.rows.filter((r) => r.ok === false);
  const lines = [
    '# Benchmark results',
    '',
    `Run ${report.date} in ${report.totalSeconds.toFixed(0)} s with \`pnpm bench\`.`,
    '',
    `- Machine: ${machine.cpuCount} × ${machine.cpuModel}, ${machine.totalMemoryGb} GB RAM, ${machine.os}, kernel ${machine.kernel}, Node ${machine.node}`,
    `- Load average (1 min) when the run started: ${machine.loadAverage}${machine.loadAverage > machine.cpuCount / 2 ? ' — the machine was busy with other work, so these figures understate what the services can do (see the generator lag in figures 3–4)' : ''}`,
    `- Durability: ${report.durability}`,
    '- Every service runs as its own process on 127.0.0.1 (as `@blog/testing` starts them), the load generators in the bench process.',
    '',
    markdownTable(report.rows),
    '',
    missed.length === 0 ? 'All targets met.' : `Missed targets (${missed.length}): ${missed.map((r) => `${r.figure}: ${r.metric}`).join('; ')}.`,
  ];
  lines.push('', 'How each figure is measured:', '', ...report.methods.map((method) => `- ${method}`));
  if (report.errors.length > 0) {
    lines.push('', 'Figures that could not be measured:', ...report.errors.map((e) => `- ${e.figure}: ${e.message}`));
  }
  return `${lines.join('\n')}\n`;
}
