// Pure policy: run the queued queries now, or let them wait behind the batch in flight. Decided from
// the profiled latency curve and the earliest deadline in the queue, never waiting past what the
// earliest query can afford. Latency comes from the latency model (latency.ts).

export { latencyCurve } from './latency.js';

export interface BatchingInput {
  /** Milliseconds since the epoch, like the deadlines. */
  now: number;
  /** Queries queued, and the earliest of their absolute deadlines. */
  queued: number;
  earliestDeadline: number;
  maxBatch: number;
  /** Profiled p50 latency of one call with a batch of b (interpolated between profiled sizes). */
  latencyMs: (batch: number) => number;
  /** Fixed cost of one batch beyond the profiled inference (thread hop, event loop); default 0. */
  overheadMs?: number;
  /** Rows queued (a query of n rows counts n); default one per query. */
  rows?: number;
  /** Batches in flight on the session; default 0 (idle). */
  running?: number;
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

/**
 * Work-conserving batching: an idle session runs whatever is queued at once, and a fuller batch forms
 * by itself while a run is in progress (arrivals queue behind it). Waiting on an idle session for a
 * batch to fill was measured to cost 5x the throughput in a closed loop of 8 clients: the queued
 * queries' senders were the only ones left to send, so the batch never filled and every query paid
 * the whole wait (docs/benchmarks.md, saturation). With a run in flight, a full batch is pipelined
 * to the session (so the thread never idles between runs); a partial one waits for the run to end,
 * since the session runs one batch at a time and handing it over early would not finish it sooner.
 * The wait is bounded by the moment the earliest query could no longer finish, when the host
 * answers it DEADLINE_EXCEEDED instead of computing it.
 */
export function decideBatch(x: BatchingInput): BatchDecision {
  const queued = x.queued;
  if (queued === 0) return { action: 'idle' };
  const rows = x.rows ?? queued;
  if (rows >= x.maxBatch) return { action: 'run', size: x.maxBatch, why: 'batch full' };
  if ((x.running ?? 0) === 0) return { action: 'run', size: rows, why: 'session idle' };
  const ms = Math.max(0, x.earliestDeadline - x.now - x.latencyMs(1) - (x.overheadMs ?? 0));
  return { action: 'wait', ms, why: 'a batch is running; the next one fills behind it' };
}

export interface DrainInput {
  /** Rows of each batch running now (at their own sizes). */
  runningRows: readonly number[];
  /** Rows queued behind them. */
  queuedRows: number;
  maxBatch: number;
  latencyMs: (batch: number) => number;
  /** Observed over profiled run time (1 = as profiled). */
  slowdown: number;
  /** What each batch costs beyond its run: the larger of the session's overhead and the loop's per-batch cost. */
  extraMs: number;
}

/**
 * Admission's arithmetic: time for what is running plus the queued rows to finish, the running
 * batches at their own sizes, the queued rows in batches of at most maxBatch (full ones, then the
 * rest), each at the observed speed plus the per-batch cost. (Costing every batch as a full one
 * made a batch-32 variant under light load look ~10x slower than it was, and its queries were
 * refused or shed for nothing.) The instance host and the trace simulator both use it.
 */
export function drainMs(x: DrainInput): number {
  const batch = (n: number) => x.latencyMs(n) * x.slowdown + x.extraMs;
  let ms = 0;
  for (const r of x.runningRows) ms += batch(r);
  const full = Math.floor(x.queuedRows / x.maxBatch);
  const rest = x.queuedRows - full * x.maxBatch;
  return ms + (full > 0 ? full * batch(x.maxBatch) : 0) + (rest > 0 ? batch(rest) : 0);
}

/**
 * Admission: when a query of `rows` arriving at `now` would finish behind the work ahead
 * (`aheadMs`, from drainMs; 0 on an idle instance), and whether that meets its deadline.
 */
export function admit(now: number, deadline: number, aheadMs: number, rows: number, latencyMs: (batch: number) => number, slowdown: number, overheadMs: number): { ok: boolean; needMs: number } {
  const needMs = aheadMs + latencyMs(rows) * slowdown + overheadMs;
  return { ok: now + needMs <= deadline, needMs };
}

/** How an instance sizes its batches: work-conserving up to the max batch, or Clipper's AIMD cap. */
export type BatchingMode = 'work-conserving' | 'aimd';
export const BATCHING_MODES: readonly BatchingMode[] = Object.freeze(['work-conserving', 'aimd']);

/**
 * Clipper's adaptive batching (Crankshaw et al., NSDI'17, section 4.3): the batch cap grows by a
 * fixed step while batches finish within the latency objective and shrinks by a small factor when
 * one overshoots. Clipper's values: a step of one and a backoff of 10 % (factor 0.9).
 */
export interface AimdSettings {
  /** Rows added to the cap after a full batch that met its objective; default 1. */
  step: number;
  /** Factor applied to the cap after a batch over its objective; default 0.9 (Clipper's 10 % backoff). */
  backoff: number;
}

export const defaultAimdSettings: AimdSettings = Object.freeze({ step: 1, backoff: 0.9 });

export interface AimdState {
  /** Rows the next batch may take, 1..maxBatch. */
  cap: number;
  maxBatch: number;
}

/** The cap starts at one row and probes upwards, as Clipper's additive increase does. */
export function aimdInitial(maxBatch: number): AimdState {
  return { cap: 1, maxBatch: Math.max(1, Math.floor(maxBatch)) };
}

export interface AimdObservation {
  /** Rows the batch ran, and its inference time. */
  rows: number;
  ms: number;
  /** What the batch had to meet: the host passes its queries' smallest deadline - receivedAt. */
  objectiveMs: number;
}

/**
 * One batch's verdict on the cap. Over the objective: the cap backs off multiplicatively from the
 * smaller of itself and the batch that overshot (floored, so it always shrinks, never below 1).
 * Within it: the cap grows by `step`, but only after a batch that filled it (as TCP grows its
 * window only when the window limited the sender): a small batch under light load says nothing
 * about a larger one, and a cap that crept to the max untested would overshoot at the first burst.
 */
export function aimdUpdate(s: AimdState, o: AimdObservation, settings: AimdSettings = defaultAimdSettings): AimdState {
  if (o.ms > o.objectiveMs) {
    const cap = Math.max(1, Math.floor(Math.min(s.cap, o.rows) * settings.backoff));
    return { ...s, cap: Math.min(cap, s.maxBatch) };
  }
  if (o.rows < s.cap) return s;
  return { ...s, cap: Math.min(s.maxBatch, Math.max(1, Math.floor(s.cap + settings.step))) };
}
