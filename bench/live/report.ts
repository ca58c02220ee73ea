// What `infaas bench` prints and writes: a progress line per window, a summary table, CSV rows
// (one per window, "overall", and one per class of a mix) and a JSON document with the method, the
// windows, the overall, the classes and the fleet samples.
import { writeFileSync } from 'node:fs';
import { fmtMs, formatTable } from '../../runtime/table.js';
import type { BenchReport } from './run.js';
import type { WindowStats } from './stats.js';

const na = (x: number | null | undefined, f: (x: number) => string): string => (x === null || x === undefined ? 'n/a' : f(x));
const pct = (x: number | null) => na(x, (v) => `${(v * 100).toFixed(1)}%`);
const ms = (x: number | null) => na(x, (v) => fmtMs(v));
const qps = (x: number) => x.toFixed(1);
const dollars = (x: number | null | undefined) => na(x, (v) => `$${v.toExponential(2)}`);
const count = (x: number | null | undefined) => na(x, String);
const codes = (e: Record<string, number>) => Object.entries(e).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');

export function progressLine(w: WindowStats, inFlight: number): string {
  const target = w.targetQps === null || w.targetQps === undefined ? '' : `, target ${qps(w.targetQps)}/s`;
  const fleet = w.workers === null || w.workers === undefined ? '' : `, workers ${w.workers} (${dollars(w.provisionedCost)})`;
  return `[${w.fromS}-${w.toS} s${w.warmup ? ' warmup' : ''}] sent ${w.sent} (${qps(w.offeredQps)}/s${target}), answered ${w.answered} ` +
    `(${qps(w.achievedQps)}/s), good ${qps(w.goodputQps)}/s, p50/p99 ${ms(w.p50)}/${ms(w.p99)} ms, errors ${w.errors}` +
    `${w.errors ? ` (${codes(w.errorsByCode)})` : ''}, right ${pct(w.accuracyDelivered)}${fleet}, in flight ${inFlight}`;
}

/** The human summary: one row per window and the overall row, the classes of a mix, then errors and variants chosen. */
export function summaryTable(r: BenchReport): string {
  const open = r.options.load.kind !== 'closed';
  const headers = ['window', ...(open ? ['target/s'] : []), 'offered/s', 'answers/s', 'goodput/s', 'p50 ms', 'p90 ms', 'p95 ms', 'p99 ms',
    'violations', 'errors', 'right', 'promised', 'cost/query', 'workers', 'provisioned', 'prov./good'];
  const row = (w: WindowStats) => [
    w.window === 'overall' ? 'overall' : `${w.fromS}-${w.toS} s${w.warmup ? ' (warmup)' : ''}`,
    ...(open ? [na(w.targetQps, qps)] : []), qps(w.offeredQps), qps(w.achievedQps), qps(w.goodputQps), ms(w.p50), ms(w.p90), ms(w.p95), ms(w.p99),
    w.violations, w.errors, pct(w.accuracyDelivered), pct(w.accuracyPromised), dollars(w.costPerQuery),
    count(w.workers), dollars(w.provisionedCost), dollars(w.provisionedCostPerGood),
  ];
  const o = r.overall;
  const lines = [formatTable(headers, [...r.windows.map(row), row(o)]), ''];
  const { load } = r.options;
  if (load.kind === 'trace') lines.push(`load: ${load.trace.description}; Poisson arrivals following it (seed ${r.options.seed})`);
  const objective = r.options.mix ? "their class's objective" : `${r.options.latencyMs} ms`;
  lines.push(`overall (${+(o.toS - o.fromS).toFixed(3)} s after ${o.fromS} s warmup): ${o.sent} sent, ${o.answered} answered, ${o.good} within ${objective}, ` +
    `${o.late} late, ${o.errors} errors${o.errors ? ` (${codes(o.errorsByCode)})` : ''}; answers' cost ${dollars(o.cost)}`);
  lines.push(o.provisionedCost === null || o.provisionedCost === undefined
    ? `provisioned cost: n/a (${r.fleet.length === 0 ? 'workers not sampled' : 'the workers bucket could not be read'})`
    : `provisioned cost: ${dollars(o.provisionedCost)} for ${+(o.workerSeconds ?? 0).toFixed(1)} worker-seconds (workers seen: ${o.workers}), ` +
      `${dollars(o.provisionedCostPerGood)} per good answer`);
  if (r.classes) lines.push('', classTable(r));
  if (Object.keys(o.variants).length) lines.push(`variants that answered: ${codes(o.variants)}`);
  return lines.join('\n');
}

function classTable(r: BenchReport): string {
  const headers = ['class', 'objective ms', 'target/s', 'offered/s', 'goodput/s', 'sent', 'good', 'late', 'errors', 'p50 ms', 'p99 ms', 'right', 'cost/query'];
  const rows = (r.options.mix ?? []).map((c) => {
    const w = r.classes![c.name];
    return [c.name, c.latencyMs, na(w.targetQps, qps), qps(w.offeredQps), qps(w.goodputQps), w.sent, w.good, w.late, w.errors, ms(w.p50), ms(w.p99),
      pct(w.accuracyDelivered), dollars(w.costPerQuery)];
  });
  return formatTable(headers, rows);
}

export const CSV_COLUMNS = [
  'window', 'class', 'from_s', 'to_s', 'warmup', 'sent', 'answered', 'target_qps', 'offered_qps', 'achieved_qps', 'goodput_qps', 'good', 'late', 'errors', 'violations',
  'p50_ms', 'p90_ms', 'p95_ms', 'p99_ms', 'accuracy_delivered', 'accuracy_promised', 'cost', 'cost_per_query',
  'workers', 'worker_seconds', 'provisioned_cost', 'provisioned_cost_per_good', 'errors_by_code',
] as const;

/** A row per window, the overall row (class empty: every class), and an overall row per class of a mix. */
export function toCsv(r: BenchReport): string {
  const cell = (x: string | number | boolean | null | undefined) => (x === null || x === undefined ? '' : typeof x === 'string' && /[",\n]/.test(x) ? `"${x.replace(/"/g, '""')}"` : String(x));
  const row = (w: WindowStats, cls = '') => [
    w.window, cls, w.fromS, w.toS, w.warmup, w.sent, w.answered, w.targetQps, w.offeredQps, w.achievedQps, w.goodputQps, w.good, w.late, w.errors, w.violations,
    w.p50, w.p90, w.p95, w.p99, w.accuracyDelivered, w.accuracyPromised, w.cost, w.costPerQuery,
    w.workers, w.workerSeconds, w.provisionedCost, w.provisionedCostPerGood,
    Object.entries(w.errorsByCode).map(([c, n]) => `${c}:${n}`).join(';'),
  ].map(cell).join(',');
  const classes = Object.entries(r.classes ?? {}).map(([name, w]) => row(w, name));
  return [CSV_COLUMNS.join(','), ...r.windows.map((w) => row(w)), row(r.overall), ...classes].join('\n') + '\n';
}

export interface BenchMethod { command: string; options: BenchReport['options']; machine: string; startedAt: string }

export function toJson(r: BenchReport, method: Omit<BenchMethod, 'options' | 'startedAt'>): string {
  const doc = {
    method: { ...method, options: r.options, startedAt: r.startedAt }, sent: r.sent, windows: r.windows, overall: r.overall,
    ...(r.classes ? { classes: r.classes } : {}), fleet: r.fleet,
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

export function writeOutputs(r: BenchReport, files: { csv?: string; json?: string }, method: Omit<BenchMethod, 'options' | 'startedAt'>): void {
  if (files.csv) writeFileSync(files.csv, toCsv(r));
  if (files.json) writeFileSync(files.json, toJson(r, method));
}
