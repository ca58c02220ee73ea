// Pure policy: which variant, on which worker, serves a query — or why none can. A function of a
// metadata snapshot and the request only, so the live dispatcher, tests and the trace simulator
// share it. `selectVariant` answers from an index of the snapshot built once per snapshot object;
// `selectVariantScan` is the same policy as a plain scan of every profile and worker, kept as the
// reference the index must agree with (test/select-variant.test.ts, bench/selection.ts).
import { latencyCurve } from '../instance/batching.js';

export interface CandidateProfile {
  variantId: string;
  model: string;
  task: string;
  hardwareClass: string;
  accuracy: number;
  maxBatch: number;
  threads: number;
  loadMs: number;
  peakMemoryBytes: number;
  /** Profiled p50 latency per batch size (ascending batch). */
  latency: { batch: number; p50Ms: number }[];
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

/** p50 for a batch: the smallest profiled batch size that holds it. */
export function latencyFor(p: CandidateProfile, batch: number): number | undefined {
  if (batch > p.maxBatch) return undefined;
  return p.latency.find((l) => l.batch >= batch)?.p50Ms;
}

/** The variant takes the batch and its profiled latency fits the objective (a batch beyond the variant's cap never does, even with no bound on latency). */
function withinObjective(p: CandidateProfile, r: SelectionRequest): boolean {
  const l = latencyFor(p, r.batch);
  return l !== undefined && l <= r.latencyMs;
}

/** Worker time the query uses, priced: the hourly price of the cores it holds x its share of one batch call. */
export function costPerQuery(pricePerHour: number, latencyMs: number, batch: number): number {
  return (pricePerHour / 3_600_000) * (latencyMs / batch);
}

function matches(p: CandidateProfile, r: SelectionRequest): boolean {
  if (r.variant) return p.variantId === r.variant;
  if (r.model) return p.model === r.model;
  return p.task === r.task;
}

/** The policy as a full scan: every profile, instance and worker x feasible profile, per decision. */
export function selectVariantScan(s: Snapshot, r: SelectionRequest): Selection {
  const mine = s.profiles.filter((p) => matches(p, r));
  // Explicit variant/model queries fix the accuracy choice; only the SLO's latency still applies.
  const floor = r.variant || r.model ? 0 : r.minAccuracy;
  const feasible = mine.filter((p) => p.accuracy >= floor && withinObjective(p, r));
  const byId = new Map(feasible.map((p) => [`${p.variantId}@${p.hardwareClass}`, p]));

  // 1. A running instance expected to finish first (healthy before overloaded or interfered), else
  //    one that is loading, if the objective allows its load time (the worker holds the query until it is ready).
  const best = bestInstance(s, r, s.instances, byId);
  if (best?.kind === 'running') return best;
  const hosting = best ? workersHosting(s.instances, byId, s) : undefined;

  // 2. Load the cheapest feasible variant on the worker with most headroom; load time counts.
  let load: Extract<Selection, { kind: 'load' }> | undefined;
  let headroom = -Infinity;
  const byClass = new Map<string, CandidateProfile[]>();
  for (const p of feasible) {
    const list = byClass.get(p.hardwareClass);
    if (list) list.push(p); else byClass.set(p.hardwareClass, [p]);
  }
  for (const w of s.workers.values()) {
    // 2a. Not beside a busy instance of a feasible variant: more instances on the same cores add
    //     no capacity (the worker's model-autoscaler replicates when a core is idle).
    if (hosting?.has(w.id)) continue;
    for (const p of byClass.get(w.hardwareClass) ?? []) {
      // Cores are shared by a worker's instances; memory is what a load must find.
      if (p.peakMemoryBytes > w.freeMemoryBytes) continue;
      const ms = latencyFor(p, r.batch)!;
      if (!r.ignoreLoadTime && p.loadMs + ms > r.latencyMs) continue;
      const cost = costPerQuery(w.pricePerThreadHour * p.threads, ms, r.batch);
      if (r.maxCostPerQuery !== undefined && cost > r.maxCostPerQuery) continue;
      const room = w.freeThreads - p.threads;
      if (!load || cost < load.costPerQuery || (cost === load.costPerQuery && room > headroom)) {
        load = { kind: 'load', variantId: p.variantId, workerId: w.id, expectedMs: p.loadMs + ms, costPerQuery: cost };
        headroom = room;
      }
    }
  }
  if (load) return load;
  if (best) return best;

  const lat = mine.filter((p) => p.accuracy >= floor).map((p) => latencyFor(p, r.batch)).filter((v): v is number => v !== undefined);
  const acc = mine.filter((p) => withinObjective(p, r)).map((p) => p.accuracy);
  return infeasible(r, floor, mine.length, feasible.length, lat.length ? Math.min(...lat) : undefined, acc.length ? Math.max(...acc) : undefined);
}

/** 3. Infeasible: say what is achievable now. */
function infeasible(r: SelectionRequest, floor: number, matched: number, feasible: number, lowestLatencyMs?: number, highestAccuracy?: number): Selection {
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

/** Profiles that share a key, linked by position in snapshot order: `first` per key, `next` per position (-1 ends). */
interface Chains { readonly first: ReadonlyMap<string, number>; readonly next: Int32Array }

/**
 * What `selectVariant` precomputes per snapshot. Profiles are grouped the three ways a query names
 * them (typed arrays and maps of numbers: cheap to build and to collect); that part is cached by
 * the profiles array, so a snapshot that reuses the array does not pay for it again. The cluster
 * part holds instance positions per variant and hardware class and each class's workers by price.
 * Instances' `outstanding` and `state` and workers' free threads and memory are read live, since
 * the live dispatcher bumps `outstanding` on its cached snapshot between rebuilds; anything else
 * changed in place needs a new snapshot object (replaced or resized collections are noticed).
 */
export interface SnapshotIndex {
  readonly profiles: { readonly byTask: Chains; readonly byModel: Chains; readonly byVariant: Chains; readonly length: number };
  readonly cluster: {
    /** variant id -> hardware class -> positions in `instances`, ascending. */
    readonly instancesAt: ReadonlyMap<string, ReadonlyMap<string, readonly number[]>>;
    /** hardware class -> its workers cheapest first (ties in map order), with their position in `workers`. */
    readonly workersByClass: ReadonlyMap<string, readonly { w: WorkerView; order: number }[]>;
  };
  readonly from: { readonly profiles: unknown; readonly workers: unknown; readonly instances: unknown; readonly sizes: readonly number[] };
}

const profileIndexes = new WeakMap<readonly CandidateProfile[], SnapshotIndex['profiles']>();
const indexes = new WeakMap<Snapshot, SnapshotIndex>();

function chain(profiles: readonly CandidateProfile[], keyOf: (p: CandidateProfile) => string): Chains {
  const first = new Map<string, number>();
  const next = new Int32Array(profiles.length);
  // Back to front, so that each chain runs in snapshot order (the scan's tie-breaks depend on it).
  for (let i = profiles.length - 1; i >= 0; i--) {
    const key = keyOf(profiles[i]);
    next[i] = first.get(key) ?? -1;
    first.set(key, i);
  }
  return { first, next };
}

function indexProfiles(profiles: readonly CandidateProfile[]): SnapshotIndex['profiles'] {
  const cached = profileIndexes.get(profiles);
  if (cached && cached.length === profiles.length) return cached;
  const index = {
    byTask: chain(profiles, (p) => p.task), byModel: chain(profiles, (p) => p.model),
    byVariant: chain(profiles, (p) => p.variantId), length: profiles.length,
  };
  profileIndexes.set(profiles, index);
  return index;
}

function indexCluster(s: Snapshot): SnapshotIndex['cluster'] {
  const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
    const list = m.get(k);
    if (list) list.push(v); else m.set(k, [v]);
  };
  const instancesAt = new Map<string, Map<string, number[]>>();
  s.instances.forEach((inst, i) => {
    const w = s.workers.get(inst.workerId);
    if (!w) return;
    let at = instancesAt.get(inst.variantId);
    if (!at) instancesAt.set(inst.variantId, at = new Map());
    push(at, w.hardwareClass, i);
  });
  const workersByClass = new Map<string, { w: WorkerView; order: number }[]>();
  let order = 0;
  for (const w of s.workers.values()) push(workersByClass, w.hardwareClass, { w, order: order++ });
  for (const list of workersByClass.values()) list.sort((a, b) => a.w.pricePerThreadHour - b.w.pricePerThreadHour || a.order - b.order);
  return { instancesAt, workersByClass };
}

const sizes = (s: Snapshot) => [s.profiles.length, s.workers.size, s.instances.length];

function builtFrom({ from: f }: SnapshotIndex, s: Snapshot): boolean {
  return f.profiles === s.profiles && f.workers === s.workers && f.instances === s.instances
    && f.sizes[0] === s.profiles.length && f.sizes[1] === s.workers.size && f.sizes[2] === s.instances.length;
}

/**
 * The snapshot's index, built on first use and cached by object (the dispatcher reuses one
 * snapshot until KV changes). `selectVariant` calls it; call it ahead to keep it off a decision.
 */
export function indexSnapshot(s: Snapshot): SnapshotIndex {
  const cached = indexes.get(s);
  if (cached && builtFrom(cached, s)) return cached;
  const index: SnapshotIndex = {
    profiles: indexProfiles(s.profiles), cluster: indexCluster(s),
    from: { profiles: s.profiles, workers: s.workers, instances: s.instances, sizes: sizes(s) },
  };
  indexes.set(s, index);
  return index;
}

/**
 * The policy (rules in selectVariantScan) answered from the snapshot's index, with the same choice,
 * ties included. Instances are visited only for feasible variants, in snapshot order; a load walks
 * each feasible profile's workers cheapest first and stops at the first that cannot beat the best
 * so far, since for one profile the cost grows with the worker's price.
 */
export function selectVariant(s: Snapshot, r: SelectionRequest): Selection {
  // An unbounded objective and a batch below 1 (which breaks "cost grows with price") are corners
  // the host never sends; the scan handles them.
  if (r.latencyMs === Infinity || !(r.batch >= 1)) return selectVariantScan(s, r);
  const ix = indexSnapshot(s);
  const [chains, key] = r.variant ? [ix.profiles.byVariant, r.variant] : r.model ? [ix.profiles.byModel, r.model] : [ix.profiles.byTask, r.task];
  const floor = r.variant || r.model ? 0 : r.minAccuracy;
  const feasible: CandidateProfile[] = [];
  const feasibleMs: number[] = [];
  // One pass also gathers what the infeasible answer reports (Math.min/max as the scan folds them).
  let matched = 0, lowest: number | undefined, highest: number | undefined;
  for (let i = key === undefined ? -1 : chains.first.get(key) ?? -1; i >= 0; i = chains.next[i]) {
    const p = s.profiles[i];
    matched++;
    const ms = latencyFor(p, r.batch);
    if (ms === undefined || !(ms <= r.latencyMs)) {
      if (p.accuracy >= floor && ms !== undefined) lowest = lowest === undefined ? ms : Math.min(lowest, ms);
      continue;
    }
    highest = highest === undefined ? p.accuracy : Math.max(highest, p.accuracy);
    if (!(p.accuracy >= floor)) continue;
    lowest = lowest === undefined ? ms : Math.min(lowest, ms);
    feasible.push(p);
    feasibleMs.push(ms);
  }
  const best = runningFromIndex(s, ix.cluster, r, feasible);
  if (best?.kind === 'running') return best;
  return loadFromIndex(ix.cluster, r, feasible, feasibleMs, best ? workersHosting(s.instances, undefined, s, ix.cluster, feasible) : undefined)
    ?? best
    ?? infeasible(r, floor, matched, feasible.length, lowest, highest);
}

/** Workers with a (not draining) instance of a feasible variant. */
function workersHosting(instances: readonly InstanceView[], byId: Map<string, CandidateProfile> | undefined, s: Snapshot, ix?: SnapshotIndex['cluster'], feasible?: CandidateProfile[]): Set<string> {
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

function runningFromIndex(s: Snapshot, ix: SnapshotIndex['cluster'], r: SelectionRequest, feasible: CandidateProfile[]): Extract<Selection, { kind: 'running' | 'busy' }> | undefined {
  // Like the scan's map, the last feasible profile of a variant@class wins.
  const byId = new Map<string, CandidateProfile>();
  const at: number[] = [];
  for (const p of feasible) {
    const positions = ix.instancesAt.get(p.variantId)?.get(p.hardwareClass);
    if (!positions) continue;
    const id = `${p.variantId}@${p.hardwareClass}`;
    if (!byId.has(id)) at.push(...positions);
    byId.set(id, p);
  }
  if (at.length === 0) return undefined;
  at.sort((a, b) => a - b);
  const instances = at.map((i) => s.instances[i]);
  return bestInstance(s, r, instances, byId);
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
function bestInstance(s: Snapshot, r: SelectionRequest, instances: Iterable<InstanceView>, byId: Map<string, CandidateProfile>): Extract<Selection, { kind: 'running' | 'busy' }> | undefined {
  let best: Extract<Selection, { kind: 'running' }> | undefined;
  let bestRank = Infinity;
  let soonest: Extract<Selection, { kind: 'busy' }> | undefined;
  for (const inst of instances) {
    const rank = RANK[inst.state];
    if (rank === undefined) continue;
    const w = s.workers.get(inst.workerId);
    const p = w && byId.get(`${inst.variantId}@${w.hardwareClass}`);
    if (!w || !p) continue;
    const ms = latencyFor(p, r.batch)!;
    const expectedMs = inst.state === 'loading' ? p.loadMs + ms : expectedCompletionMs(p, pendingRows(p, inst, r.now), r.batch);
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
  const full = latencyFor(p, p.maxBatch) ?? 0;
  const served = full > 0 ? ((now - inst.reportedAt) * p.maxBatch) / full : Infinity;
  return Math.max(0, Math.round(inst.outstanding - served));
}

const curves = new WeakMap<CandidateProfile, (rows: number) => number>();

/**
 * When a query of `rows` sent to an instance with `outstanding` rows ahead of it would finish, from
 * the profile: the work ahead in full batches and a partial one, then its own batch (the worker's
 * latency curve, interpolated between profiled batch sizes).
 */
export function expectedCompletionMs(p: CandidateProfile, outstanding: number, rows: number): number {
  let curve = curves.get(p);
  if (!curve) curves.set(p, curve = latencyCurve(p.latency));
  const rest = outstanding % p.maxBatch;
  return Math.floor(outstanding / p.maxBatch) * curve(p.maxBatch) + (rest > 0 ? curve(rest) : 0) + curve(rows);
}

/**
 * The scan's winner: lowest cost, then most room, then first in worker order, then in profile
 * order. Prices are numbers >= 0 (the worker record's schema), so the price order is the cost order.
 */
function loadFromIndex(ix: SnapshotIndex['cluster'], r: SelectionRequest, feasible: CandidateProfile[], feasibleMs: number[], hosting?: Set<string>): Selection | undefined {
  let best: { p: CandidateProfile; w: WorkerView; ms: number; cost: number; room: number; order: number; at: number } | undefined;
  for (let at = 0; at < feasible.length; at++) {
    const p = feasible[at];
    const ms = feasibleMs[at];
    if (!r.ignoreLoadTime && p.loadMs + ms > r.latencyMs) continue;
    for (const { w, order } of ix.workersByClass.get(p.hardwareClass) ?? []) {
      if (hosting?.has(w.id)) continue;
      const cost = costPerQuery(w.pricePerThreadHour * p.threads, ms, r.batch);
      // Workers come cheapest first: every later one costs at least as much.
      if ((best && cost > best.cost) || (r.maxCostPerQuery !== undefined && cost > r.maxCostPerQuery)) break;
      // Cores are shared by a worker's instances; memory is what a load must find.
      if (p.peakMemoryBytes > w.freeMemoryBytes) continue;
      const room = w.freeThreads - p.threads;
      if (!best || cost < best.cost || (cost === best.cost && (room > best.room
        || (room === best.room && (order < best.order || (order === best.order && at < best.at)))))) {
        best = { p, w, ms, cost, room, order, at };
      }
    }
  }
  return best && { kind: 'load', variantId: best.p.variantId, workerId: best.w.id, expectedMs: best.p.loadMs + best.ms, costPerQuery: best.cost };
}
