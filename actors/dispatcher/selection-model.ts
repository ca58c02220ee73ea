// The selection policy's model: the snapshot and request types, and what both implementations of
// the policy share (latency and cost of a profile, expected completion at an instance, the choice
// among running instances, the infeasible answer). No I/O: the dispatcher, tests and the trace
// simulator use the same functions.
import type { Precision } from '../../schemas/registry.js';
import { latencyCurve, sizedLatencyCurve, stepLatencyMs } from '../instance/latency.js';
import type { SnapshotIndex } from './select-index.js';

export interface CandidateProfile {
  variantId: string;
  model: string;
  task: string;
  hardwareClass: string;
  accuracy: number;
  /** Numeric precision of the variant, when known (the fixed-variant baseline picks fp32 first). */
  precision?: Precision;
  maxBatch: number;
  threads: number;
  loadMs: number;
  peakMemoryBytes: number;
  /** Profiled p50 latency per batch size (ascending batch), at the largest profiled input size. */
  latency: { batch: number; p50Ms: number }[];
  /**
   * For a model profiled at several input sizes: each size's input elements per sample and its
   * curve (ascending elements, each ascending batch). A request that gives its `elements` is
   * predicted from these (instance/latency.ts); absent, from `latency`.
   */
  sizes?: { elements: number; latency: { batch: number; p50Ms: number }[] }[];
}

export interface WorkerView {
  id: string;
  hardwareClass: string;
  /** The worker's hourly price over its threads: a variant costs this times the threads it holds. */
  pricePerThreadHour: number;
  freeThreads: number;
  freeMemoryBytes: number;
}

export type InstanceState = 'loading' | 'active' | 'overloaded' | 'interfered' | 'draining';

export interface InstanceView {
  variantId: string;
  workerId: string;
  state: InstanceState;
  /** Rows queued plus in flight: last report plus what this dispatcher sent since. */
  outstanding: number;
  /** When the instance last reported (epoch ms): the work it had then drains at its profiled rate. */
  reportedAt?: number;
}

export interface Snapshot {
  profiles: CandidateProfile[];
  workers: Map<string, WorkerView>;
  instances: InstanceView[];
}

export interface SelectionRequest {
  task?: string;
  model?: string;
  variant?: string;
  batch: number;
  latencyMs: number;
  minAccuracy: number;
  maxCostPerQuery?: number;
  /** Choose a variant to load even if its load time exceeds the objective (to warm it up for the next queries). */
  ignoreLoadTime?: boolean;
  /** Decision time, epoch ms (for draining reported queues); default: queues as reported. */
  now?: number;
  /**
   * The query's input elements per sample (instance/latency.ts, sampleElements): its latency is
   * predicted at its size where a profile has sizes. Absent: every profile's `latency`.
   */
  elements?: number;
}

export type Selection =
  | { kind: 'running'; variantId: string; workerId: string; expectedMs: number; costPerQuery: number }
  | { kind: 'load'; variantId: string; workerId: string; expectedMs: number; costPerQuery: number }
  /** Instances of feasible variants exist but none would finish in time now: retry later (the autoscalers add capacity). */
  | { kind: 'busy'; variantId: string; workerId: string; expectedMs: number; retryAfterMs: number; loading: boolean }
  | {
      kind: 'infeasible';
      reason: string;
      /** Lowest latency any variant reaches at the requested accuracy, and the highest accuracy within the requested latency. */
      achievable: { lowestLatencyMs?: number; atAccuracy: number; highestAccuracy?: number; withinMs: number };
    };

/**
 * p50 for a batch: the smallest profiled batch size that holds it; with `elements` and a profile
 * with sizes, that read at the sizes around it and blended in elements (instance/latency.ts, stepLatencyMs).
 */
export function latencyFor(p: CandidateProfile, batch: number, elements?: number): number | undefined {
  return batch > p.maxBatch ? undefined : stepLatencyMs(p, batch, elements);
}

/** The variant takes the batch and its profiled latency (at the query's size) fits the objective (a batch beyond the variant's cap never does, even with no bound on latency). */
export function withinObjective(p: CandidateProfile, r: SelectionRequest): boolean {
  const l = latencyFor(p, r.batch, r.elements);
  return l !== undefined && l <= r.latencyMs;
}

/** Worker time the query uses, priced: the hourly price of the cores it holds x its share of one batch call. */
export function costPerQuery(pricePerHour: number, latencyMs: number, batch: number): number {
  return (pricePerHour / 3_600_000) * (latencyMs / batch);
}

export function matches(p: CandidateProfile, r: SelectionRequest): boolean {
  if (r.variant) return p.variantId === r.variant;
  if (r.model) return p.model === r.model;
  return p.task === r.task;
}

/** 3. Infeasible: say what is achievable now. */
export function infeasible(r: SelectionRequest, floor: number, matched: number, feasible: number, lowestLatencyMs?: number, highestAccuracy?: number): Selection {
  const reason = matched === 0 ? 'no registered variant matches'
    : feasible === 0 ? 'no variant meets both the accuracy floor and the latency objective'
    : 'no worker can run a feasible variant in time';
  return {
    kind: 'infeasible', reason,
    achievable: {
      ...(lowestLatencyMs !== undefined ? { lowestLatencyMs } : {}), atAccuracy: floor,
      ...(highestAccuracy !== undefined ? { highestAccuracy } : {}), withinMs: r.latencyMs,
    },
  };
}

/** Workers with a (not draining) instance of a feasible variant. */
export function workersHosting(instances: readonly InstanceView[], byId: Map<string, CandidateProfile> | undefined, s: Snapshot, ix?: SnapshotIndex['cluster'], feasible?: CandidateProfile[]): Set<string> {
  const out = new Set<string>();
  if (ix && feasible) {
    for (const p of feasible) {
      for (const i of ix.instancesAt.get(p.variantId)?.get(p.hardwareClass) ?? []) if (instances[i].state !== 'draining') out.add(instances[i].workerId);
    }
    return out;
  }
  for (const inst of instances) {
    const w = s.workers.get(inst.workerId);
    if (w && inst.state !== 'draining' && byId!.has(`${inst.variantId}@${w.hardwareClass}`)) out.add(w.id);
  }
  return out;
}

/** Health ranks before expected completion: an overloaded or interfered instance is used only when no active one is available. */
const RANK: Partial<Record<InstanceState, number>> = { active: 0, interfered: 1, overloaded: 1, loading: 2 };

/**
 * The instance of a feasible variant expected to finish this query first (its queue included, as
 * reported and drained at the profiled rate since, plus what this dispatcher sent), healthy ones
 * before overloaded or interfered ones, loading ones only after those; cost breaks ties. One that
 * would finish within the objective is 'running'; when none would, the soonest is 'busy', with the
 * shortfall as retry advice. Draining instances take nothing.
 */
export function bestInstance(s: Snapshot, r: SelectionRequest, instances: Iterable<InstanceView>, byId: Map<string, CandidateProfile>): Extract<Selection, { kind: 'running' | 'busy' }> | undefined {
  let best: Extract<Selection, { kind: 'running' }> | undefined;
  let bestRank = Infinity;
  let soonest: Extract<Selection, { kind: 'busy' }> | undefined;
  for (const inst of instances) {
    const rank = RANK[inst.state];
    if (rank === undefined) continue;
    const w = s.workers.get(inst.workerId);
    const p = w && byId.get(`${inst.variantId}@${w.hardwareClass}`);
    if (!w || !p) continue;
    const ms = latencyFor(p, r.batch, r.elements)!;
    const expectedMs = inst.state === 'loading' ? p.loadMs + ms : expectedCompletionMs(p, pendingRows(p, inst, r.now), r.batch, r.elements);
    if (expectedMs > r.latencyMs) {
      if (!soonest || expectedMs < soonest.expectedMs) soonest = { kind: 'busy', variantId: inst.variantId, workerId: w.id, expectedMs, retryAfterMs: expectedMs - r.latencyMs, loading: inst.state === 'loading' };
      continue;
    }
    if (rank > bestRank) continue;
    const cost = costPerQuery(w.pricePerThreadHour * p.threads, ms, r.batch);
    if (r.maxCostPerQuery !== undefined && cost > r.maxCostPerQuery) continue;
    if (!best || rank < bestRank || expectedMs < best.expectedMs || (expectedMs === best.expectedMs && cost < best.costPerQuery)) {
      best = { kind: 'running', variantId: inst.variantId, workerId: w.id, expectedMs, costPerQuery: cost };
      bestRank = rank;
    }
  }
  return best ?? soonest;
}

/** Rows still ahead at an instance: as reported, less what it has served since at its profiled full-batch rate. */
function pendingRows(p: CandidateProfile, inst: InstanceView, now?: number): number {
  if (now === undefined || inst.reportedAt === undefined || inst.outstanding === 0) return inst.outstanding;
  // The drain rate of the largest profiled batch: a curve may stop short of the cap (a large input
  // whose big batches were too costly to profile); with none, nothing is assumed served.
  const last = p.latency.length > 0 ? p.latency[p.latency.length - 1] : undefined;
  const rows = last ? Math.min(p.maxBatch, last.batch) : 0;
  const full = rows > 0 ? latencyFor(p, rows) ?? 0 : 0;
  const served = full > 0 ? ((now - inst.reportedAt) * rows) / full : 0;
  return Math.max(0, Math.round(inst.outstanding - served));
}

const curves = new WeakMap<CandidateProfile, (rows: number) => number>();
/** Per profile with sizes, its curve per input size asked for (bounded: starts over past 64 sizes). */
const sizedCurves = new WeakMap<CandidateProfile, Map<number, (rows: number) => number>>();

function curveAt(p: CandidateProfile, elements: number): (rows: number) => number {
  let bySize = sizedCurves.get(p);
  if (!bySize) sizedCurves.set(p, bySize = new Map());
  let curve = bySize.get(elements);
  if (!curve) {
    if (bySize.size >= 64) bySize.clear();
    bySize.set(elements, curve = sizedLatencyCurve(p, elements));
  }
  return curve;
}

/**
 * When a query of `rows` sent to an instance with `outstanding` rows ahead of it would finish, from
 * the profile: the work ahead in full batches and a partial one (at the profile's reference size,
 * the largest: the dispatcher does not know the sizes queued there), then its own batch (the
 * worker's latency curve, interpolated between profiled batch sizes, at the query's `elements`
 * where the profile has sizes).
 */
export function expectedCompletionMs(p: CandidateProfile, outstanding: number, rows: number, elements?: number): number {
  let curve = curves.get(p);
  if (!curve) curves.set(p, curve = latencyCurve(p.latency));
  const own = elements === undefined || !p.sizes?.length ? curve : curveAt(p, elements);
  const rest = outstanding % p.maxBatch;
  return Math.floor(outstanding / p.maxBatch) * curve(p.maxBatch) + (rest > 0 ? curve(rest) : 0) + own(rows);
}


/**
 * Every instance that could serve the request is busy: where to add one. The policy asked again
 * with load time ignored gives a load on a worker that hosts no feasible instance (a worker the
 * VM-autoscaler just added, say), unless an instance of that variant is loading already: one
 * warm-up at a time per variant. Without this, a load that does not fit the objective was never
 * made while instances were busy, and new workers stayed empty (found by the trace simulator:
 * eight workers, one serving, 23 % of queries refused).
 */
export function warmUpWhenBusy(policy: (s: Snapshot, r: SelectionRequest) => Selection, s: Snapshot, r: SelectionRequest): Extract<Selection, { kind: 'load' }> | undefined {
  const warm = policy(s, { ...r, ignoreLoadTime: true });
  if (warm.kind !== 'load') return undefined;
  if (s.instances.some((i) => i.state === 'loading' && i.variantId === warm.variantId)) return undefined;
  return warm;
}

/**
 * The hardware classes that demand which found no room asks the VM-autoscaler for: the classes of
 * the variants that meet the request (accuracy floor, and the objective at its batch, load time
 * aside), narrowed to the one where serving it costs least when prices are known (a class's price
 * per thread-hour from `prices`, else from its cheapest live worker). Asking every class that has
 * a profile, as before, made the VM-autoscaler start a CPU, a GPU and an Inferentia worker for
 * each shortage (found by the trace simulator). A class with no known price counts only when no
 * priced class fits. No feasible variant: the classes of every matching profile (as before).
 */
export function unplacedClasses(s: Snapshot, r: SelectionRequest, prices?: ReadonlyMap<string, number>): string[] {
  // Asked for every refused query under overload: remembered per snapshot object, price list and
  // request shape (a snapshot lives at least 100 ms; its profiles and workers do not change in place).
  let memo = unplacedMemo.get(s);
  if (!memo || memo.prices !== prices) unplacedMemo.set(s, memo = { prices, byShape: new Map() });
  const key = `${r.variant ?? ''}\u0000${r.model ?? ''}\u0000${r.task ?? ''}\u0000${r.batch}\u0000${r.latencyMs}\u0000${r.minAccuracy}\u0000${r.elements ?? ''}`;
  let out = memo.byShape.get(key);
  if (!out) {
    if (memo.byShape.size >= 256) memo.byShape.clear();
    memo.byShape.set(key, out = classesFor(s, r, prices));
  }
  return out;
}

const unplacedMemo = new WeakMap<Snapshot, { prices: ReadonlyMap<string, number> | undefined; byShape: Map<string, string[]> }>();

function classesFor(s: Snapshot, r: SelectionRequest, prices?: ReadonlyMap<string, number>): string[] {
  const floor = r.variant ? 0 : r.minAccuracy;
  const mine = s.profiles.filter((p) => matches(p, r));
  const feasible = mine.filter((p) => p.accuracy >= floor && withinObjective(p, r));
  if (feasible.length === 0) return [...new Set(mine.map((p) => p.hardwareClass))];
  const known = new Map(prices);
  for (const w of s.workers.values()) if (!prices?.has(w.hardwareClass)) known.set(w.hardwareClass, Math.min(known.get(w.hardwareClass) ?? Infinity, w.pricePerThreadHour));
  let best: { cls: string; cost: number } | undefined;
  for (const p of feasible) {
    const price = known.get(p.hardwareClass);
    if (price === undefined) continue;
    const cost = costPerQuery(price * p.threads, latencyFor(p, r.batch, r.elements)!, r.batch);
    if (!best || cost < best.cost) best = { cls: p.hardwareClass, cost };
  }
  return best ? [best.cls] : [...new Set(feasible.map((p) => p.hardwareClass))];
}

/** A running choice costs this many times the cheapest feasible alternative before one is warmed up. */
export const DEAR_FACTOR = 2;

/** How often a dispatcher asks warmUpCheaper per running variant, and warmUpWhenBusy per busy one (ms). */
export const DEAR_CHECK_MS = 1000;
export const BUSY_CHECK_MS = 100;

/**
 * The query goes to a running instance, but a feasible variant costing at most 1/DEAR_FACTOR as
 * much per query could run instead (on a worker that has room; load time aside): the load to start
 * for the next queries, unless that variant is loading already. The policy asked again with a cost
 * ceiling gives it; a cheaper running instance it finds instead needs nothing. Without this, a
 * running instance that meets the objective kept winning however dear it was: a demonstration's
 * leftover cnn-wide served a trough at twice the cost of cnn-small (docs/benchmarks.md). Callers
 * ask at most once a second per running variant: it is a second decision.
 */
export function warmUpCheaper(policy: (s: Snapshot, r: SelectionRequest) => Selection, s: Snapshot, r: SelectionRequest, running: Extract<Selection, { kind: 'running' }>): Extract<Selection, { kind: 'load' }> | undefined {
  const ceiling = running.costPerQuery / DEAR_FACTOR;
  if (!(ceiling > 0)) return undefined;
  const alt = policy(s, { ...r, ignoreLoadTime: true, maxCostPerQuery: Math.min(ceiling, r.maxCostPerQuery ?? Infinity) });
  if (alt.kind !== 'load' || alt.variantId === running.variantId) return undefined;
  if (s.instances.some((i) => i.state === 'loading' && i.variantId === alt.variantId)) return undefined;
  return alt;
}
