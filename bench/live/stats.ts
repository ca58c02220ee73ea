// Pure arithmetic of `infaas bench`: seeded Poisson arrivals, percentiles, and the statistics of a
// window of query outcomes (throughput, goodput, violations, accuracy, cost). No I/O, no clock.
import { seededRandom } from '../../runtime/random.js';

/** One query's fate, as the bench client saw it. Times are ms since the run started. */
export interface BenchOutcome {
  /** Send order, 0..sent-1: every query sent has exactly one outcome. */
  seq: number;
  sentAt: number;
  doneAt: number;
  ok: boolean;
  /** The error code when not ok (TIMEOUT when nothing came back in time). */
  code?: string;
  variant?: string;
  hardwareClass?: string;
  /** Whether the answer's argmax equals the input's label. */
  correct?: boolean;
  /** The chosen variant's measured accuracy on the answer's hardware class, when the registry has it. */
  promisedAccuracy?: number;
  /** The answer's `cost` field (dollars). */
  cost?: number;
}

export interface WindowStats {
  /** Window index as text, or "overall". */
  window: string;
  fromS: number;
  toS: number;
  warmup: boolean;
  sent: number;
  answered: number;
  /** Answers within the objective (client-side latency, send to answer). */
  good: number;
  late: number;
  errors: number;
  errorsByCode: Record<string, number>;
  /** Late answers plus errors. */
  violations: number;
  offeredQps: number;
  achievedQps: number;
  goodputQps: number;
  /** Latency of answers (ms), nearest rank; null without answers. */
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  /** Share of answers that were right; null without answers. */
  accuracyDelivered: number | null;
  /** Mean measured accuracy of the variants that answered; null when none is known. */
  accuracyPromised: number | null;
  cost: number;
  /** Cost per answer; null without answers. */
  costPerQuery: number | null;
  variants: Record<string, number>;
}


/** Send times (ms from 0) of a Poisson process at `rate` per second over `seconds`: exponential gaps. */
export function poissonArrivals(rate: number, seconds: number, seed: number): number[] {
  if (!(rate > 0) || !(seconds > 0)) return [];
  const random = seededRandom(seed);
  const out: number[] = [];
  for (let t = 0; ; ) {
    t += (-Math.log(1 - random()) / rate) * 1000;
    if (t >= seconds * 1000) return out;
    out.push(t);
  }
}

/** Nearest-rank percentile of ascending `sorted` (p in (0, 1]); null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export interface Span { window: string; fromS: number; toS: number; warmup: boolean }

/**
 * Statistics of the outcomes of the queries *sent* in [fromS, toS): a window's errors and late
 * answers are shares of what it offered, whenever they came back.
 */
export function windowStats(outcomes: readonly BenchOutcome[], span: Span, objectiveMs: number): WindowStats {
  const inside = outcomes.filter((o) => o.sentAt >= span.fromS * 1000 && o.sentAt < span.toS * 1000);
  const seconds = Math.max(1e-9, span.toS - span.fromS);
  const answers = inside.filter((o) => o.ok);
  const latencies = answers.map((o) => o.doneAt - o.sentAt).sort((a, b) => a - b);
  const good = latencies.filter((ms) => ms <= objectiveMs).length;
  const errorsByCode: Record<string, number> = {};
  for (const o of inside) if (!o.ok) errorsByCode[o.code ?? 'UNKNOWN'] = (errorsByCode[o.code ?? 'UNKNOWN'] ?? 0) + 1;
  const variants: Record<string, number> = {};
  for (const o of answers) if (o.variant) variants[o.variant] = (variants[o.variant] ?? 0) + 1;
  const promised = answers.filter((o) => o.promisedAccuracy !== undefined).map((o) => o.promisedAccuracy!);
  const cost = answers.reduce((s, o) => s + (o.cost ?? 0), 0);
  const errors = inside.length - answers.length;
  return {
    ...span,
    sent: inside.length, answered: answers.length, good, late: answers.length - good, errors, errorsByCode,
    violations: answers.length - good + errors,
    offeredQps: inside.length / seconds, achievedQps: answers.length / seconds, goodputQps: good / seconds,
    p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99),
    accuracyDelivered: answers.length ? answers.filter((o) => o.correct).length / answers.length : null,
    accuracyPromised: promised.length ? promised.reduce((a, b) => a + b, 0) / promised.length : null,
    cost, costPerQuery: answers.length ? cost / answers.length : null,
    variants,
  };
}

const round = (s: number) => Math.round(s * 1e6) / 1e6;

/** Consecutive windows of `windowS` over warmup then measurement (the last one may be shorter). */
export function windowSpans(warmupS: number, durationS: number, windowS: number): Span[] {
  const spans: Span[] = [];
  const end = warmupS + durationS;
  // Warmup and measurement get their own windows, so no window mixes the two.
  for (const [from, to, warmup] of [[0, warmupS, true], [warmupS, end, false]] as const) {
    // Multiplied, not summed, and rounded to the microsecond, so 0.1 s windows end at 0.3, not 0.30000000000000004.
    for (let k = 0; from + k * windowS < to - 1e-9; k++) {
      spans.push({ window: String(spans.length), fromS: round(from + k * windowS), toS: round(Math.min(to, from + (k + 1) * windowS)), warmup });
    }
  }
  return spans;
}

/** Every window's statistics and the overall ones, warmup excluded from the overall. */
export function summarise(outcomes: readonly BenchOutcome[], o: { warmupS: number; durationS: number; windowS: number; objectiveMs: number }): { windows: WindowStats[]; overall: WindowStats } {
  const windows = windowSpans(o.warmupS, o.durationS, o.windowS).map((s) => windowStats(outcomes, s, o.objectiveMs));
  const overall = windowStats(outcomes, { window: 'overall', fromS: o.warmupS, toS: o.warmupS + o.durationS, warmup: false }, o.objectiveMs);
  return { windows, overall };
}
