// Reports of simulated runs: one line per run, a side-by-side table with ratios against the first
// (reference) policy, and the chart series. Pure formatting.
import { formatTable } from '../../runtime/table.js';
import type { ChartSeries } from '../charts.js';
import type { SimReport } from './simulate.js';

const pct = (x: number, of: number) => (of > 0 ? `${((100 * x) / of).toFixed(1)} %` : '-');
const money = (x: number) => (x === 0 ? '$0' : x >= 0.01 ? `$${x.toFixed(2)}` : `$${x.toExponential(2)}`);

/** Ratio text: how many times `x` is `ref` (x / ref), or "-" where undefined. */
export function ratio(x: number, ref: number): string {
  if (ref === 0) return x === 0 ? '1.00x' : '-';
  return `${(x / ref).toFixed(2)}x`;
}

export function summaryLine(r: SimReport): string {
  const o = r.overall;
  const errors = Object.entries(o.errorsByCode).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
  return `${r.policy}: ${o.sent} queries, ${o.good} within objective (${pct(o.good, o.sent)}), ${o.violations} violations (${o.late} late${errors ? `, ${errors}` : ''}), provisioned ${money(o.provisionedCost)}, ${r.decisions.length} scaling decisions, ${r.events} events`;
}

/**
 * Per policy: goodput, violations, provisioned cost (worker-hours x price) and its cost per good
 * answer, busy cost (the answers' charged cost), mean promised accuracy, worker-hours by class;
 * then the ratios the issue's goals are stated in, each above 1 where the reference (the first
 * policy) does better: its goodput over this one's, this one's violations over its, this one's
 * provisioned cost over its.
 */
export function comparisonTable(reports: readonly SimReport[]): string {
  if (reports.length === 0) return '';
  const { headers, rows } = comparison(reports);
  return formatTable(headers, rows);
}

function comparison(reports: readonly SimReport[]): { headers: string[]; rows: (string | number)[][] } {
  const ref = reports[0].overall;
  const name = reports[0].policy;
  const rows = reports.map((r) => {
    const o = r.overall;
    const ws = Object.entries(r.workerSeconds).filter(([, s]) => s > 0).map(([c, s]) => `${c} ${(s / 3600).toFixed(2)} h`).join(', ');
    return [
      r.policy, o.sent, `${o.good} (${pct(o.good, o.sent)})`, o.violations, money(o.provisionedCost),
      o.provisionedCostPerGood === null ? '-' : money(o.provisionedCostPerGood), money(o.cost),
      o.accuracyPromised === null ? '-' : `${(100 * o.accuracyPromised).toFixed(2)} %`, ws || '-',
      ratio(ref.good, o.good), ratio(o.violations, ref.violations), ratio(o.provisionedCost, ref.provisionedCost),
    ];
  });
  return {
    headers: ['policy', 'sent', 'within objective', 'violations', 'provisioned cost', 'per good answer', 'busy cost', 'accuracy', 'worker time',
      `${name} goodput / this`, `violations / ${name}'s`, `cost / ${name}'s`],
    rows,
  };
}

/** Markdown version of the comparison (docs/benchmarks.md). */
export function comparisonMarkdown(reports: readonly SimReport[]): string {
  if (reports.length === 0) return '';
  const { headers, rows } = comparison(reports);
  return [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The chart series of a simulated run (bench/charts.ts). */
export function fromSimReport(r: SimReport): ChartSeries {
  return {
    policy: r.policy,
    ...(r.mix.length === 1 ? { objectiveMs: r.mix[0].latencyMs } : {}),
    windows: r.windows.map((w) => ({
      tS: w.fromS, offeredQps: w.offeredQps, targetQps: w.targetQps, goodputQps: w.goodputQps, achievedQps: w.achievedQps,
      p50: w.p50, p99: w.p99, violations: w.violations, errors: w.errors, cost: w.provisionedCost,
      workers: w.workers, instances: w.instances, variants: w.variants,
    })),
  };
}
