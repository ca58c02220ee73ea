// Pure: per-model throughput, goodput, misses and p99 over the last minute, from the instance records
// the workers rewrite each monitor window (KV keeps only the latest one, so the console keeps a minute).
import type { InstanceRecord } from '../../schemas/worker.js';
import type { ModelSummary } from '../../schemas/admin.js';

/** One instance record turned into counts: answers and misses in its window, and its run times. */
interface Sample { at: number; model: string; answered: number; misses: number; runs: { ms: number; runs: number }[] }

/** A window's length when a record has no predecessor to measure from: the monitor's default (1 s). */
const DEFAULT_WINDOW_MS = 1000;
/** A gap longer than this is a restart or an outage, not one window. */
const MAX_WINDOW_MS = 5000;

export class MinuteWindow {
  private samples: Sample[] = [];
  private readonly lastAt = new Map<string, number>();

  constructor(private readonly spanMs = 60_000, private readonly startedAt = Date.now()) {}

  /** A record read from infaas_instances under `key`; a record already seen (same updatedAt) adds nothing. */
  add(key: string, r: InstanceRecord): void {
    const prev = this.lastAt.get(key);
    if (prev !== undefined && r.updatedAt <= prev) return;
    this.lastAt.set(key, r.updatedAt);
    // A record says the window its rates cover; an older worker's does not, and the gap since the
    // instance's previous record stands in (records written at a state change carry zero rates).
    const windowMs = r.windowMs ?? (prev === undefined ? DEFAULT_WINDOW_MS : Math.min(MAX_WINDOW_MS, r.updatedAt - prev));
    this.samples.push({
      // A window's answers are a whole number: rounding undoes the rate's division.
      at: r.updatedAt, model: r.model, answered: Math.round(r.serviceRate * windowMs / 1000), misses: r.deadlineMisses,
      runs: r.latency.map((l) => ({ ms: l.observedMs, runs: l.runs })),
    });
  }

  forget(key: string): void {
    this.lastAt.delete(key);
  }

  summarize(now = Date.now()): { windowMs: number; models: ModelSummary[]; } {
    this.samples = this.samples.filter((s) => now - s.at <= this.spanMs);
    const windowMs = Math.max(1, Math.min(this.spanMs, now - this.startedAt));
    const by = new Map<string, Sample[]>();
    for (const s of this.samples) by.set(s.model, [...(by.get(s.model) ?? []), s]);
    const models = [...by].map(([model, ss]) => {
      const answered = ss.reduce((a, s) => a + s.answered, 0);
      const misses = ss.reduce((a, s) => a + s.misses, 0);
      return {
        model, instances: 0, answered, misses,
        throughput: round(answered / (windowMs / 1000)),
        goodput: round(Math.max(0, answered - misses) / (windowMs / 1000)),
        p99Ms: weightedPercentile(ss.flatMap((s) => s.runs), 0.99),
      };
    });
    return { windowMs, models: models.sort((a, b) => (a.model < b.model ? -1 : 1)) };
  }
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** The value below which a share `q` of the runs fall; null without runs. */
export function weightedPercentile(xs: { ms: number; runs: number }[], q: number): number | null {
  const total = xs.reduce((a, x) => a + x.runs, 0);
  if (total === 0) return null;
  const sorted = [...xs].sort((a, b) => a.ms - b.ms);
  let seen = 0;
  for (const x of sorted) {
    seen += x.runs;
    if (seen >= q * total) return round(x.ms);
  }
  return round(sorted[sorted.length - 1]!.ms);
}
