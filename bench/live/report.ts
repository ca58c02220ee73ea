// What `infaas bench` prints and writes: a progress line per window, a summary table, CSV rows
// (one per window plus "overall") and a JSON document with the method, the windows and the overall.
import { writeFileSync } from 'node:fs';
import { fmtMs, formatTable } from '../../runtime/table.js';
import type { BenchReport } from './run.js';
import type { WindowStats } from './stats.js';

const na = (x: number | null, f: (x: number) => string): string => (x === null ? 'n/a' : f(x));
const pct = (x: number | null) => na(x, (v) => `${(v * 100).toFixed(1)}%`);
const ms = (x: number | null) => na(x, (v) => fmtMs(v));
const qps = (x: number) => x.toFixed(1);
const dollars = (x: number | null) => na(x, (v) => `$${v.toExponential(2)}`);
const codes = (e: Record<string, number>) => Object.entries(e).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');

export function progressLine(w: WindowStats, inFlight: number): string {
  return `[${w.fromS}-${w.toS} s${w.warmup ? ' warmup' : ''}] sent ${w.sent} (${qps(w.offeredQps)}/s), answered ${w.answered} ` +
    `(${qps(w.achievedQps)}/s), good ${qps(w.goodputQps)}/s, p50/p99 ${ms(w.p50)}/${ms(w.p99)} ms, errors ${w.errors}` +
    `${w.errors ? ` (${codes(w.errorsByCode)})` : ''}, right ${pct(w.accuracyDelivered)}, in flight ${inFlight}`;
}

/** The human summary: one row per window and the overall row, then errors and variants chosen. */
export function summaryTable(r: BenchReport): string {
  const headers = ['window', 'offered/s', 'answers/s', 'goodput/s', 'p50 ms', 'p90 ms', 'p95 ms', 'p99 ms', 'violations', 'errors', 'right', 'promised', 'cost/query'];
  const row = (w: WindowStats) => [
    w.window === 'overall' ? 'overall' : `${w.fromS}-${w.toS} s${w.warmup ? ' (warmup)' : ''}`,
    qps(w.offeredQps), qps(w.achievedQps), qps(w.goodputQps), ms(w.p50), ms(w.p90), ms(w.p95), ms(w.p99),
    w.violations, w.errors, pct(w.accuracyDelivered), pct(w.accuracyPromised), dollars(w.costPerQuery),
  ];
  const o = r.overall;
  const lines = [formatTable(headers, [...r.windows.map(row), row(o)]), ''];
  lines.push(`overall (${+(o.toS - o.fromS).toFixed(3)} s after ${o.fromS} s warmup): ${o.sent} sent, ${o.answered} answered, ${o.good} within ${r.options.latencyMs} ms, ` +
    `${o.late} late, ${o.errors} errors${o.errors ? ` (${codes(o.errorsByCode)})` : ''}; total cost ${dollars(o.cost)}`);
  if (Object.keys(o.variants).length) lines.push(`variants that answered: ${codes(o.variants)}`);
  return lines.join('\n');
}

export const CSV_COLUMNS = [
  'window', 'from_s', 'to_s', 'warmup', 'sent', 'answered', 'offered_qps', 'achieved_qps', 'goodput_qps', 'good', 'late', 'errors', 'violations',
  'p50_ms', 'p90_ms', 'p95_ms', 'p99_ms', 'accuracy_delivered', 'accuracy_promised', 'cost', 'cost_per_query', 'errors_by_code',
] as const;

export function toCsv(r: BenchReport): string {
  const cell = (x: string | number | boolean | null) => (x === null ? '' : typeof x === 'string' && /[",\n]/.test(x) ? `"${x.replace(/"/g, '""')}"` : String(x));
  const row = (w: WindowStats) => [
    w.window, w.fromS, w.toS, w.warmup, w.sent, w.answered, w.offeredQps, w.achievedQps, w.goodputQps, w.good, w.late, w.errors, w.violations,
    w.p50, w.p90, w.p95, w.p99, w.accuracyDelivered, w.accuracyPromised, w.cost, w.costPerQuery,
    Object.entries(w.errorsByCode).map(([c, n]) => `${c}:${n}`).join(';'),
  ].map(cell).join(',');
  return [CSV_COLUMNS.join(','), ...r.windows.map(row), row(r.overall)].join('\n') + '\n';
}

export interface BenchMethod { command: string; options: BenchReport['options']; machine: string; startedAt: string }

export function toJson(r: BenchReport, method: Omit<BenchMethod, 'options' | 'startedAt'>): string {
  const doc = { method: { ...method, options: r.options, startedAt: r.startedAt }, sent: r.sent, windows: r.windows, overall: r.overall };
  return JSON.stringify(doc, null, 2) + '\n';
}

export function writeOutputs(r: BenchReport, files: { csv?: string; json?: string }, method: Omit<BenchMethod, 'options' | 'startedAt'>): void {
  if (files.csv) writeFileSync(files.csv, toCsv(r));
  if (files.json) writeFileSync(files.json, toJson(r, method));
}
