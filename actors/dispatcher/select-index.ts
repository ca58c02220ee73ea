// The selection policy answered from an index of the snapshot built once per snapshot object:
// the same choices as the full scan in select-variant.ts, ties included, without visiting every
// profile and worker per decision.
import {
  bestInstance, infeasible, latencyFor, costPerQuery, workersHosting,
  type CandidateProfile, type Selection, type SelectionRequest, type Snapshot, type WorkerView,
} from './selection-model.js';
import { selectVariantScan } from './select-scan.js';

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
  readonly profiles: {
    readonly byTask: Chains; readonly byModel: Chains; readonly byVariant: Chains; readonly length: number;
    /** Some profile has latency per input size: only then does a request's `elements` change what is feasible. */
    readonly sized: boolean;
  };
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
    byVariant: chain(profiles, (p) => p.variantId), length: profiles.length, sized: profiles.some((p) => (p.sizes?.length ?? 0) > 0),
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

interface Feasible { feasible: CandidateProfile[]; feasibleMs: number[]; matched: number; lowest?: number; highest?: number }

/** Per profile index: the feasible profiles per request shape (what a task, floor, batch, objective and input size admit). */
const feasibleMemo = new WeakMap<SnapshotIndex['profiles'], Map<string, Feasible>>();

/**
 * The profiles meeting the request (latency at its batch within the objective, accuracy at the
 * floor), and what the infeasible answer reports. A function of the profiles and the request only,
 * so it is remembered per profile index and request shape: most queries repeat a few shapes, and
 * this pass over every matching profile was most of a decision's time (measured by the trace
 * simulator's profile). Bounded: the memo starts over past 1,024 shapes. The query's input
 * size is part of the shape, exactly (not bucketed, so the scan and the index predict the same),
 * where some profile has sizes: queries come in a few sizes (images at a handful of resolutions);
 * sizes that vary continuously miss the memo and pay the pass.
 */
function feasibleFor(profiles: readonly CandidateProfile[], px: SnapshotIndex['profiles'], r: SelectionRequest, floor: number): Feasible {
  let memo = feasibleMemo.get(px);
  if (!memo) feasibleMemo.set(px, memo = new Map());
  const mkey = `${r.variant ?? ''}\u0000${r.model ?? ''}\u0000${r.task ?? ''}\u0000${r.batch}\u0000${r.latencyMs}\u0000${floor}\u0000${px.sized ? r.elements ?? '' : ''}`;
  const hit = memo.get(mkey);
  if (hit) return hit;
  const [chains, key] = r.variant ? [px.byVariant, r.variant] : r.model ? [px.byModel, r.model] : [px.byTask, r.task];
  const feasible: CandidateProfile[] = [];
  const feasibleMs: number[] = [];
  // One pass also gathers what the infeasible answer reports (Math.min/max as the scan folds them).
  let matched = 0, lowest: number | undefined, highest: number | undefined;
  for (let i = key === undefined ? -1 : chains.first.get(key) ?? -1; i >= 0; i = chains.next[i]) {
    const p = profiles[i];
    matched++;
    const ms = latencyFor(p, r.batch, r.elements);
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
  const out: Feasible = { feasible, feasibleMs, matched, ...(lowest !== undefined ? { lowest } : {}), ...(highest !== undefined ? { highest } : {}) };
  if (memo.size >= 1024) memo.clear();
  memo.set(mkey, out);
  return out;
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
  const floor = r.variant ? 0 : r.minAccuracy;
  const { feasible, feasibleMs, matched, lowest, highest } = feasibleFor(s.profiles, ix.profiles, r, floor);
  const best = runningFromIndex(s, ix.cluster, r, feasible);
  if (best?.kind === 'running') return best;
  return loadFromIndex(ix.cluster, r, feasible, feasibleMs, best ? workersHosting(s.instances, undefined, s, ix.cluster, feasible) : undefined)
    ?? best
    ?? infeasible(r, floor, matched, feasible.length, lowest, highest);
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
