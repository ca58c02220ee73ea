// The simulator's statistics: the same fields, and the same definitions, as `infaas bench`
// (bench/live/stats.ts: a query counts in the window it was sent in; goodput is answers within the
// query's own objective; violations are late answers plus errors; nearest-rank percentiles), kept
// as running counts per window so a day-long trace of millions of queries fits in memory. Plus
// what only the simulator sees exactly: workers and instances at each window's end, and the
// provisioned cost (every worker's price for the time it existed, starting and draining included).
import { percentile, type WindowStats } from '../live/stats.js';

export interface SimWindow extends WindowStats {
  /** Offered rate the trace asked for in this window (expected arrivals per second). */
  targetQps: number;
  /** Workers existing at the window's end (starting and draining included), by class. */
  workers: number;
  workersByClass: Record<string, number>;
  /** Instances (loading, serving or draining) at the window's end, by variant@class. */
  instances: number;
  instancesByVariant: Record<string, number>;
  /** Dollars: every worker's hourly price for its time inside the window. */
  provisionedCost: number;
  /** provisionedCost per answer within the objective; null without any. */
  provisionedCostPerGood: number | null;
}

interface Acc {
  sent: number; answered: number; good: number; errorsByCode: Record<string, number>;
  latencies: number[]; cost: number; variants: Record<string, number>; promisedSum: number; promisedN: number;
}

const empty = (): Acc => ({ sent: 0, answered: 0, good: 0, errorsByCode: {}, latencies: [], cost: 0, variants: {}, promisedSum: 0, promisedN: 0 });

export interface OutcomeRecord {
  sentAt: number; doneAt: number; objectiveMs: number; cls: string;
  ok: boolean; code?: string; variant?: string; cost?: number; promisedAccuracy?: number;
}

/** Running statistics per window, per class and overall (warm-up windows left out of overall). */
export class SimStats {
  private readonly windows: Acc[] = [];
  private readonly overall = empty();
  private readonly classes = new Map<string, Acc>();
  /** Set per window at its end by the simulation. */
  readonly capacity: { workersByClass: Record<string, number>; instancesByVariant: Record<string, number> }[] = [];

  constructor(private readonly windowS: number, private readonly warmupS: number, private readonly keepLatencies = true) {}

  windowOf(ms: number): number {
    return Math.floor(ms / 1000 / this.windowS);
  }

  sent(at: number): void {
    this.acc(this.windowOf(at)).sent++;
  }

  record(o: OutcomeRecord): void {
    const w = this.acc(this.windowOf(o.sentAt));
    const targets = o.sentAt >= this.warmupS * 1000 ? [w, this.overall, this.cls(o.cls)] : [w];
    for (const a of targets) {
      if (a !== w) a.sent++;
      if (!o.ok) { const c = o.code ?? 'UNKNOWN'; a.errorsByCode[c] = (a.errorsByCode[c] ?? 0) + 1; continue; }
      const ms = o.doneAt - o.sentAt;
      a.answered++;
      if (ms <= o.objectiveMs) a.good++;
      if (this.keepLatencies || a === w) a.latencies.push(ms);
      a.cost += o.cost ?? 0;
      if (o.variant) a.variants[o.variant] = (a.variants[o.variant] ?? 0) + 1;
      if (o.promisedAccuracy !== undefined) { a.promisedSum += o.promisedAccuracy; a.promisedN++; }
    }
  }

  private acc(k: number): Acc {
    while (this.windows.length <= k) this.windows.push(empty());
    return this.windows[k];
  }

  private cls(name: string): Acc {
    let a = this.classes.get(name);
    if (!a) this.classes.set(name, a = empty());
    return a;
  }

  /**
   * Final statistics. `provisioned(fromS, toS)` gives the worker cost in a span; `target(fromS, toS)`
   * the trace's expected arrivals.
   */
  finish(durationS: number, provisioned: (fromS: number, toS: number) => number, target: (fromS: number, toS: number) => number): { windows: SimWindow[]; overall: SimWindow; classes: Record<string, WindowStats> } {
    const n = Math.ceil(durationS / this.windowS - 1e-9);
    const windows: SimWindow[] = [];
    for (let k = 0; k < n; k++) {
      const [fromS, toS] = [k * this.windowS, Math.min(durationS, (k + 1) * this.windowS)];
      const cap = this.capacity[k] ?? { workersByClass: {}, instancesByVariant: {} };
      windows.push(extend(stats(this.acc(k), String(k), fromS, toS, fromS < this.warmupS), cap, provisioned(fromS, toS), target(fromS, toS) / Math.max(1e-9, toS - fromS)));
    }
    const last = this.capacity[n - 1] ?? { workersByClass: {}, instancesByVariant: {} };
    const overall = extend(stats(this.overall, 'overall', this.warmupS, durationS, false), last, provisioned(this.warmupS, durationS), target(this.warmupS, durationS) / Math.max(1e-9, durationS - this.warmupS));
    const classes = Object.fromEntries([...this.classes].map(([name, a]) => [name, stats(a, name, this.warmupS, durationS, false)]));
    return { windows, overall, classes };
  }
}

function extend(w: WindowStats, cap: { workersByClass: Record<string, number>; instancesByVariant: Record<string, number> }, provisionedCost: number, targetQps: number): SimWindow {
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  return {
    ...w, targetQps, workers: sum(cap.workersByClass), workersByClass: cap.workersByClass,
    instances: sum(cap.instancesByVariant), instancesByVariant: cap.instancesByVariant,
    provisionedCost, provisionedCostPerGood: w.good > 0 ? provisionedCost / w.good : null,
  };
}

function stats(a: Acc, window: string, fromS: number, toS: number, warmup: boolean): WindowStats {
  const seconds = Math.max(1e-9, toS - fromS);
  const lat = Float64Array.from(a.latencies).sort();
  const errors = a.sent - a.answered;
  return {
    window, fromS, toS, warmup,
    sent: a.sent, answered: a.answered, good: a.good, late: a.answered - a.good, errors, errorsByCode: a.errorsByCode,
    violations: a.answered - a.good + errors,
    offeredQps: a.sent / seconds, achievedQps: a.answered / seconds, goodputQps: a.good / seconds,
    p50: percentile(lat as unknown as number[], 0.5), p90: percentile(lat as unknown as number[], 0.9),
    p95: percentile(lat as unknown as number[], 0.95), p99: percentile(lat as unknown as number[], 0.99),
    // The simulator computes no outputs: nothing to check against labels.
    accuracyDelivered: null,
    accuracyPromised: a.promisedN > 0 ? a.promisedSum / a.promisedN : null,
    cost: a.cost, costPerQuery: a.answered > 0 ? a.cost / a.answered : null,
    variants: a.variants,
  };
}
