// Pure policy: run the queued queries now, or wait (and how long) for a fuller batch. Decided from
// the profiled latency curve and the earliest deadline in the queue, never waiting past what the
// earliest query can afford. Groundwork for the worker issue.

export interface BatchingInput {
  /** Milliseconds since the epoch, like the deadlines. */
  now: number;
  /** Queued queries' absolute deadlines, oldest query first. */
  deadlines: number[];
  maxBatch: number;
  /** Profiled p50 latency of one call with a batch of b (interpolated between profiled sizes). */
  latencyMs: (batch: number) => number;
  /** Recent arrivals per second for this instance. */
  arrivalRate: number;
  /** Upper bound on any wait, whatever the slack (keeps tail latency bounded at low load). */
  maxWaitMs: number;
  /** Head-room kept for scheduling noise when computing slack. */
  marginMs: number;
  /** Fixed cost of one batch beyond the profiled inference (thread hop, event loop); default 0. */
  overheadMs?: number;
}

/**
 * Serving cost of one batch beyond its profiled inference: the hop to the session thread and back
 * and the event loop's handling (0.1-0.2 ms measured for the hop alone on the dev VM; more when
 * cores are contended).
 */
export const BATCH_OVERHEAD_MS = 0.25;

/** Rows per second one instance serves at full batches: its profile plus the per-batch overhead. */
export function capacityQps(latencyMs: (batch: number) => number, maxBatch: number, overheadMs = BATCH_OVERHEAD_MS): number {
  const full = latencyMs(maxBatch);
  return full > 0 ? (maxBatch * 1000) / (full + overheadMs) : 0;
}

export type BatchDecision =
  | { action: 'idle' }
  | { action: 'run'; size: number; why: string }
  | { action: 'wait'; ms: number; why: string };

/** Linear interpolation over profiled (batch, ms) points; beyond the last point, scale per query. */
export function latencyCurve(points: { batch: number; p50Ms: number }[]): (batch: number) => number {
  const ps = [...points].sort((a, b) => a.batch - b.batch);
  return (b) => {
    if (ps.length === 0) return 0;
    if (b <= ps[0].batch) return ps[0].p50Ms;
    for (let i = 1; i < ps.length; i++) {
      if (b <= ps[i].batch) {
        const [lo, hi] = [ps[i - 1], ps[i]];
        return lo.p50Ms + ((hi.p50Ms - lo.p50Ms) * (b - lo.batch)) / (hi.batch - lo.batch);
      }
    }
    const last = ps[ps.length - 1];
    return (last.p50Ms * b) / last.batch;
  };
}

/** Below this share of its unbatched capacity an instance runs what it has instead of waiting. */
export const LIGHT_LOAD = 0.5;

export function decideBatch(x: BatchingInput): BatchDecision {
  const queued = x.deadlines.length;
  if (queued === 0) return { action: 'idle' };
  if (queued >= x.maxBatch) return { action: 'run', size: x.maxBatch, why: 'batch full' };
  // A loop, not Math.min(...): a long queue would overflow the argument stack.
  let earliest = Infinity;
  for (const d of x.deadlines) if (d < earliest) earliest = d;
  const slack = earliest - x.now - x.latencyMs(x.maxBatch) - x.marginMs;
  if (slack <= 0) return { action: 'run', size: queued, why: 'earliest deadline cannot afford a wait' };
  // Waiting pays only if a fuller batch serves each query more cheaply...
  const overhead = x.overheadMs ?? 0;
  const perQueryNow = (x.latencyMs(queued) + overhead) / queued;
  const perQueryFull = (x.latencyMs(x.maxBatch) + overhead) / x.maxBatch;
  if (perQueryFull >= perQueryNow * 0.95) return { action: 'run', size: queued, why: 'bigger batches are not cheaper per query' };
  if (x.arrivalRate <= 0) return { action: 'run', size: queued, why: 'no arrivals expected' };
  // ...and only when the instance is busy enough to need the throughput: below half its unbatched
  // capacity, queries served one by one never queue, and a wait would only add latency.
  const unbatchedLoad = (x.arrivalRate * (x.latencyMs(1) + overhead)) / 1000;
  if (unbatchedLoad < LIGHT_LOAD) return { action: 'run', size: queued, why: `light load (${(unbatchedLoad * 100).toFixed(0)}% of unbatched capacity)` };
  const toFill = ((x.maxBatch - queued) / x.arrivalRate) * 1000;
  const ms = Math.min(slack, toFill, x.maxWaitMs);
  if (ms < 0.05) return { action: 'run', size: queued, why: 'wait would be negligible' };
  return { action: 'wait', ms, why: `slack ${slack.toFixed(2)} ms, batch fills in ~${toFill.toFixed(2)} ms` };
}
