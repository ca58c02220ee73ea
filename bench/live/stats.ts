// Pure arithmetic of `infaas bench`: seeded Poisson arrivals, percentiles, and the statistics of a
// window of query outcomes (throughput, goodput, violations, accuracy, cost, provisioned cost). No I/O, no clock.
import { seededRandom } from '../../runtime/random.js';
import { fleetInSpan, noFleet, type FleetSample } from './fleet.js';

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
  /** The query's class in a mix (--mix), and its own latency objective (ms) for goodput. */
  cls?: string;
  objectiveMs?: number;
}

export interface WindowStats {
  /** Window index as text, or "overall". */
  window: string;
  fromS: number;
  toS: number;
  warmup: boolean;
  sent: number;
  answered: number;
  /** Answers within their objective (a mix's: each query's class's), by client-side latency, send to answer. */
  good: number;
  late: number;
  errors: number;
  errorsByCode: Record<string, number>;
  /** Late answers plus errors. */
  violations: number;
  // The load's expectation and the fleet: windowStats always fills them (null when unknown); optional
  // so that other producers of WindowStats (the trace simulator) may fill them their own way.
  /** The load's expected rate over the window (the trace's integral / length); null for a closed loop. */
  targetQps?: number | null;
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
  /** Workers seen live in the window's fleet samples; null when not sampled or unreadable. */
  workers?: number | null;
  /** Σ seconds each worker was up in the window; null likewise. */
  workerSeconds?: number | null;
  /** Σ over live workers of pricePerHour × seconds up / 3600; null likewise. */
  provisionedCost?: number | null;
  /** Provisioned cost per answer within its objective; null without either. */
  provisionedCostPerGood?: number | null;
  variants: Record<string, number>;
}

/** What the statistics need besides the outcomes: the load's expectation and the fleet. */
export interface RunContext {
  /** Expected arrivals in [fromS, toS) (open loop); absent for a closed loop. */
  expectedArrivals?: (fromS: number, toS: number) => number;
  /** Fleet samples and when the last one stops holding (ms); absent when not sampled. */
  fleet?: { samples: readonly FleetSample[]; untilMs: number };
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
 * answers are shares of what it offered, whenever they came back. An answer is good within its own
 * objective (`objectiveMs` of the outcome, a mix's class), else within the run's `objectiveMs`.
 */
export function windowStats(outcomes: readonly BenchOutcome[], span: Span, objectiveMs: number, ctx: RunContext = {}): WindowStats {
  const inside = outcomes.filter((o) => o.sentAt >= span.fromS * 1000 && o.sentAt < span.toS * 1000);
  const seconds = Math.max(1e-9, span.toS - span.fromS);
  const answers = inside.filter((o) => o.ok);
  const latencies = answers.map((o) => o.doneAt - o.sentAt).sort((a, b) => a - b);
  const good = answers.filter((o) => o.doneAt - o.sentAt <= (o.objectiveMs ?? objectiveMs)).length;
  const errorsByCode: Record<string, number> = {};
  for (const o of inside) if (!o.ok) errorsByCode[o.code ?? 'UNKNOWN'] = (errorsByCode[o.code ?? 'UNKNOWN'] ?? 0) + 1;
  const variants: Record<string, number> = {};
  for (const o of answers) if (o.variant) variants[o.variant] = (variants[o.variant] ?? 0) + 1;
  const promised = answers.filter((o) => o.promisedAccuracy !== undefined).map((o) => o.promisedAccuracy!);
  const cost = answers.reduce((s, o) => s + (o.cost ?? 0), 0);
  const errors = inside.length - answers.length;
  const fleet = ctx.fleet ? fleetInSpan(ctx.fleet.samples, ctx.fleet.untilMs, span.fromS, span.toS) : noFleet;
  return {
    ...span,
    sent: inside.length, answered: answers.length, good, late: answers.length - good, errors, errorsByCode,
    violations: answers.length - good + errors,
    targetQps: ctx.expectedArrivals ? ctx.expectedArrivals(span.fromS, span.toS) / seconds : null,
    offeredQps: inside.length / seconds, achievedQps: answers.length / seconds, goodputQps: good / seconds,
    p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99),
    accuracyDelivered: answers.length ? answers.filter((o) => o.correct).length / answers.length : null,
    accuracyPromised: promised.length ? promised.reduce((a, b) => a + b, 0) / promised.length : null,
    cost, costPerQuery: answers.length ? cost / answers.length : null,
    ...fleet, provisionedCostPerGood: fleet.provisionedCost !== null && good > 0 ? fleet.provisionedCost / good : null,
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

export interface Summary {
  windows: WindowStats[];
  overall: WindowStats;
  /** Overall statistics of each class of a mix, by name (absent without classes). */
  classes?: Record<string, WindowStats>;
}

/**
 * Every window's statistics and the overall ones, warmup excluded from the overall; with `classes`
 * (name and share of the arrivals), each class's overall too. A class's target is its share of the
 * load's; the fleet serves every class, so a class has no provisioned cost of its own (null).
 */
export function summarise(
  outcomes: readonly BenchOutcome[],
  o: { warmupS: number; durationS: number; windowS: number; objectiveMs: number; classes?: readonly { name: string; share: number }[] },
  ctx: RunContext = {},
): Summary {
  const windows = windowSpans(o.warmupS, o.durationS, o.windowS).map((s) => windowStats(outcomes, s, o.objectiveMs, ctx));
  const span: Span = { window: 'overall', fromS: o.warmupS, toS: o.warmupS + o.durationS, warmup: false };
  const overall = windowStats(outcomes, span, o.objectiveMs, ctx);
  if (!o.classes) return { windows, overall };
  const classes: Record<string, WindowStats> = {};
  for (const c of o.classes) {
    const expected = ctx.expectedArrivals;
    classes[c.name] = windowStats(outcomes.filter((x) => x.cls === c.name), span, o.objectiveMs,
      expected ? { expectedArrivals: (from, to) => expected(from, to) * c.share } : {});
  }
  return { windows, overall, classes };
}
