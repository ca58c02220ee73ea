// Pure policy: is a variant instance Active, Overloaded or Interfered? Called by the monitor once
// per sample window; the same function runs in tests and (later) in the trace simulator.

export type Verdict = 'active' | 'overloaded' | 'interfered';

export interface InstanceSample {
  /** Queries that arrived in the window, per second. */
  arrivalRate: number;
  /** Queries per second the instance's replicas can finish within the SLO, from the profile. */
  capacity: number;
  /** Queue length at the end of the window, and its growth over the window (queries). */
  queueLength: number;
  queueGrowth: number;
  /** Queries answered or refused in the window, and how many of them missed (or could not make) their deadline. */
  queries?: number;
  deadlineMisses?: number;
  /** Observed and profiled median latency of the batch sizes run in this window. */
  latency: { batch: number; observedMs: number; profiledMs: number }[];
}

export interface ClassifierThresholds {
  /** Demand above this fraction of capacity (or a growing queue) enters Overloaded... */
  overloadEnter: number;
  /** ...and only demand below this fraction, with a drained queue, leaves it. */
  overloadExit: number;
  /** Observed/profiled latency at or above this enters Interfered (when not overloaded)... */
  interferenceEnter: number;
  /** ...and below this leaves it. */
  interferenceExit: number;
  /** Consecutive windows a condition must hold before the verdict changes (no flapping). */
  windows: number;
  /** A queue longer than this many queries counts as backlog. */
  backlogQueries: number;
  /** A window in which more than this share of queries missed their deadlines is overloaded, whatever the profile says. */
  missShare: number;
  /**
   * Milliseconds added to each profiled latency before comparing: an isolated run after an idle
   * gap pays a thread wake-up and cold caches (measured 0.06-0.3 ms on the dev VM) that the
   * profiler's back-to-back runs do not. Without it a 0.02 ms model reads as 5-10x slowed down.
   */
  allowanceMs: number;
}

/**
 * Defaults. INFaaS flagged interference when observed latency exceeded the profiled one by a
 * factor of about 1.25-2.5; 1.5 to enter and 1.2 to leave sits in that band with a gap wide
 * enough that scheduler noise on a shared core does not toggle the state. Overload enters at
 * 100 % of profiled capacity and leaves at 80 %: a queue grows without bound above capacity.
 */
export const defaultThresholds: ClassifierThresholds = Object.freeze({
  overloadEnter: 1.0,
  overloadExit: 0.8,
  interferenceEnter: 1.5,
  interferenceExit: 1.2,
  windows: 2,
  backlogQueries: 8,
  missShare: 0.01,
  allowanceMs: 0.25,
});

export interface ClassifierState {
  verdict: Verdict;
  /** The verdict the last windows pointed at, and for how many windows in a row. */
  pending: Verdict;
  streak: number;
}

export const initialClassifierState: ClassifierState = Object.freeze({ verdict: 'active', pending: 'active', streak: 0 });

/** Weighted observed/(profiled + allowance) ratio over the batch sizes seen (undefined when nothing ran). */
export function slowdown(sample: InstanceSample, allowanceMs = 0): number | undefined {
  const seen = sample.latency.filter((l) => l.profiledMs > 0 && l.observedMs > 0);
  if (seen.length === 0) return undefined;
  const observed = seen.reduce((a, l) => a + l.observedMs, 0);
  const profiled = seen.reduce((a, l) => a + l.profiledMs + allowanceMs, 0);
  return observed / profiled;
}

/** What this window alone says, given the current verdict (the exit thresholds apply inside a state). */
function indicated(current: Verdict, s: InstanceSample, load: number, ratio: number | undefined, th: ClassifierThresholds): Verdict {
  const backlog = s.queueLength > th.backlogQueries && s.queueGrowth > 0;
  // Observed misses overrule the computed capacity: an instance missing deadlines is never "active at 40 %".
  const missing = (s.deadlineMisses ?? 0) > Math.max(2, th.missShare * (s.queries ?? 0));
  const overloaded = current === 'overloaded'
    ? load >= th.overloadExit || s.queueLength > th.backlogQueries || missing
    : load > th.overloadEnter || backlog || missing;
  if (overloaded) return 'overloaded';
  if (ratio === undefined) return current === 'overloaded' ? 'active' : current;
  const interfered = current === 'interfered' ? ratio >= th.interferenceExit : ratio >= th.interferenceEnter;
  return interfered ? 'interfered' : 'active';
}

export interface Classification { state: ClassifierState; changed: boolean; reason: string }

export function classifyInstance(prev: ClassifierState, sample: InstanceSample, th: ClassifierThresholds = defaultThresholds): Classification {
  const load = sample.capacity > 0 ? sample.arrivalRate / sample.capacity : Infinity;
  const ratio = slowdown(sample, th.allowanceMs);
  const next = indicated(prev.verdict, sample, load, ratio, th);
  const streak = next === prev.pending ? prev.streak + 1 : 1;
  const misses = sample.deadlineMisses ? `, ${sample.deadlineMisses} of ${sample.queries ?? '?'} missed deadlines` : '';
  const reason = `load ${(load * 100).toFixed(0)}% of capacity${misses}, queue ${sample.queueLength} (${sample.queueGrowth >= 0 ? '+' : ''}${sample.queueGrowth}), latency x${ratio === undefined ? '-' : ratio.toFixed(2)} of profile`;
  if (next !== prev.verdict && streak >= th.windows) {
    return { state: { verdict: next, pending: next, streak }, changed: true, reason };
  }
  return { state: { verdict: prev.verdict, pending: next, streak }, changed: false, reason };
}
