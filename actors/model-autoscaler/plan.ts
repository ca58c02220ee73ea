// Pure policy: what one worker's model-autoscaler does this round for each variant it runs. State in,
// state out, no I/O, so the worker host, the tests and the trace simulator share one function.
//
// Rules (INFaaS's model-autoscaler, reworked for a worker's thread and memory budget):
// - A group is the instances of one variant in loading/active/overloaded/interfered. Draining,
//   unloaded and failed instances belong to no group, but draining ones still run, so they count
//   toward the memory in use, and toward the busy cores while they have work (cores are shared:
//   an idle instance holds memory, not a core). A group with a loading instance waits (capacity is on its
//   way) and restarts its low-demand streak; so does one whose variant is unknown or unprofiled.
// - At most one action per group per call, none within cooldownMs of its last one. Every action
//   stamps lastActionAt and clears lowSince. Actions in one call draw on one running total of
//   reserved resources (growth only: a replaced instance drains past this call), so two groups
//   cannot both take the last free core; overloaded groups, most overloaded first, draw first.
// - Overload (an 'overloaded' verdict, or demand > n x capacity): need = demand / headroom. An
//   upgrade is a same-model variant with more capacity, accuracy within tolerance, that fits when it
//   replaces one replica: of those reaching need the fewest threads, then fastest load; else the
//   most capacity. Upgrade when it reaches need (or adds at least a replica's capacity), adds fewer
//   threads than a replica and loads within upgradeLoadFactor x this variant's load time; else
//   replicate if a replica fits; else upgrade
//   anyway if one fits; else mitigate. A switch replaces the instance with the longest queue.
// - Unload (ahead of interference and low load): a lone instance with no demand, idle that long,
//   unless the operator pinned it (docs/operations.md).
// - Interference (not overloaded, with demand): switch the interfered instance to a same-model variant with
//   more threads (same maxBatch first, then fewest threads), else mitigate.
// - Low load (neither): fewer replicas, or a cheaper variant, would serve demand at half the
//   headroom. Sustained for scaleDownAfterMs it removes the shortest-queue replica if the rest hold
//   demand within headroom, else downgrades one to the cheapest such variant (fewest threads, then
//   memory). A lone instance with zero demand is not downgraded: it is left to the unload rule.
// - Replication only (`switches: false`, the fixed-variant baseline's autoscaler): no upgrade,
//   downgrade or interference switch; overload replicates or mitigates, interference mitigates,
//   low load only removes replicas.
import type { InstanceState } from '../../schemas/worker.js';
import type { Precision } from '../../schemas/registry.js';

/** A variant this worker could run, with this worker's hardware-class profile. */
export interface ScalingVariant {
  id: string; model: string;
  precision: Precision;
  maxBatch: number;
  threads: number;          // intra-op threads the instance reserves
  accuracy: number;         // 0..1 measured
  loadMs: number;
  memoryBytes: number;
  capacityQps: number;      // queries/s one replica serves at full batches, from the profile
}

export interface ScalingInstance {
  id: string; variant: string; state: InstanceState;
  arrivalRate: number;      // queries/s over the last window
  queueLength: number;
  idleMs: number;           // since its last arrival
  /** Share of its arrivals from queries that named its variant (0..1); default 0. */
  pinnedShare?: number;
  /** Pinned by the operator: never unloaded for idleness (other rules still apply). */
  pinned?: boolean;
  /** What the instance actually reserves, when the host knows it; defaults to its variant's profile. */
  threads?: number;
  memoryBytes?: number;
}

export interface WorkerScalingSnapshot {
  now: number;              // epoch ms
  threads: number;          // the worker's thread budget
  memoryBytes: number;      // the worker's memory budget
  instances: ScalingInstance[];
  /** Every variant of every model that has an instance here (profiled for this class), by id. */
  variants: ReadonlyMap<string, ScalingVariant>;
}

export interface ScalingSettings {
  headroom: number;                 // target utilisation of capacity
  scaleDownAfterMs: number;         // low demand must last this long before capacity goes
  unloadIdleAfterMs: number;        // a lone instance with no arrivals this long is unloaded
  cooldownMs: number;               // no second action on a variant group this soon
  accuracyTolerance: number;        // a switch may lose at most this much accuracy
  upgradeLoadFactor: number;        // an upgrade beats a replica only if it loads within this x the variant's loadMs
  switches: boolean;                // false: replication only, never another variant (fixed-variant baseline)
}

/**
 * Defaults. Headroom 0.8 plans to run at 80 % of profiled capacity, the same margin at which the
 * monitor lets an instance leave Overloaded, so a scaled-up group does not classify as overloaded
 * again. Scale-down waits 30 s (thirty 1 s monitor windows) and the cooldown is five windows, so
 * one action's effect is observed before the next. 120 s idle before unloading keeps a model warm
 * across short gaps, since reloading costs its loadMs on the next query. Accuracy may drop by half
 * a point: about the measurement noise of accuracy on a validation set of a few thousand samples. 1.5 is INFaaS's factor: it
 * upgraded rather than replicated only when the upgrade loaded within 1.5x the replica's time.
 */
export const defaultScalingSettings: ScalingSettings = Object.freeze({
  headroom: 0.8,
  scaleDownAfterMs: 30_000,
  unloadIdleAfterMs: 120_000,
  cooldownMs: 5_000,
  accuracyTolerance: 0.005,
  upgradeLoadFactor: 1.5,
  switches: true,
});

/** Per variant id: when its demand turned low, and when it was last acted on. */
export interface ScalingState { groups: Record<string, { lowSince?: number; lastActionAt?: number }> }

export const initialScalingState: ScalingState = Object.freeze({ groups: Object.freeze({}) }) as ScalingState;

type Details = Record<string, number>;
export type ScalingAction =
  | { type: 'replicate'; variant: string; why: string; details: Details }
  | { type: 'switch'; reason: 'upgrade' | 'downgrade' | 'interference'; instance: string; from: string; to: string; why: string; details: Details }
  | { type: 'remove'; instance: string; variant: string; why: string; details: Details }   // drain one replica
  | { type: 'unload'; instance: string; variant: string; why: string; details: Details }   // drain the last, idle instance
  | { type: 'mitigate'; instance: string; variant: string; why: string; details: Details }; // ask the controller to place capacity elsewhere

const grouped: ReadonlySet<InstanceState> = new Set<InstanceState>(['loading', 'active', 'overloaded', 'interfered']);
const reserving: ReadonlySet<InstanceState> = new Set<InstanceState>([...grouped, 'draining']);

interface Budget { threads: number; memoryBytes: number }

interface Group {
  id: string; v: ScalingVariant | undefined; members: ScalingInstance[]; demand: number; capacity: number;
  verdict: 'wait' | 'overloaded' | 'interfered' | 'normal';
}

/** Per call: the snapshot, settings and the reserved total that planned actions add to. */
interface Round { snap: WorkerScalingSnapshot; s: ScalingSettings; reserved: Budget }

interface Planned { action: ScalingAction; adds: Budget }
const nothing: Budget = Object.freeze({ threads: 0, memoryBytes: 0 });

const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(1));
const threadWord = (n: number): string => `${n} thread${n === 1 ? '' : 's'}`;
const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The member with the highest scores, compared in order; ties go to the lowest id so plans are deterministic. */
function pick(members: ScalingInstance[], ...scores: ((i: ScalingInstance) => number)[]): ScalingInstance {
  return members.reduce((best, i) => {
    for (const score of scores) {
      const d = score(i) - score(best);
      if (d !== 0) return d > 0 ? i : best;
    }
    return i.id < best.id ? i : best;
  });
}

function reservedBy(snap: WorkerScalingSnapshot): Budget {
  const r = { threads: 0, memoryBytes: 0 };
  for (const i of snap.instances) {
    if (!reserving.has(i.state)) continue;
    const v = snap.variants.get(i.variant);
    // Cores are shared, not reserved: an instance with nothing to do uses memory, not a core.
    if (i.state === 'loading' || i.arrivalRate > 0 || i.queueLength > 0) r.threads += i.threads ?? v?.threads ?? 0;
    r.memoryBytes += i.memoryBytes ?? v?.memoryBytes ?? 0;
  }
  return r;
}

function groupsOf(snap: WorkerScalingSnapshot): Group[] {
  const byVariant = new Map<string, ScalingInstance[]>();
  for (const i of snap.instances) {
    if (grouped.has(i.state)) byVariant.set(i.variant, [...(byVariant.get(i.variant) ?? []), i]);
  }
  return [...byVariant].map(([id, members]) => {
    const v = snap.variants.get(id);
    const demand = members.reduce((a, i) => a + i.arrivalRate, 0);
    const capacity = members.length * (v?.capacityQps ?? 0);
    const verdict = !v || v.capacityQps <= 0 || members.some((i) => i.state === 'loading') ? 'wait'
      // An Overloaded verdict with no arrivals since (the load stopped; the verdict is a window
      // old) asks for nothing: a replica cannot take a queue that is already there.
      : (demand > 0 && members.some((i) => i.state === 'overloaded')) || demand > capacity ? 'overloaded'
      // Likewise an Interfered verdict with no demand: the monitor keeps it while no runs show
      // otherwise, and mitigating it asked the controller for capacity every cooldown for nothing.
      : demand > 0 && members.some((i) => i.state === 'interfered') ? 'interfered' : 'normal';
    return { id, v, members, demand, capacity, verdict };
  });
}

/** Overloaded groups first, the most overloaded (demand / capacity) leading; then interfered; then the rest. */
function byUrgency(a: Group, b: Group): number {
  const rank = { overloaded: 0, interfered: 1, normal: 2, wait: 3 } as const;
  return rank[a.verdict] - rank[b.verdict]
    || (a.verdict === 'overloaded' ? b.demand / b.capacity - a.demand / a.capacity : 0)
    || byId(a, b);
}

/** A change that adds nothing always fits, even on a worker already over budget. */
function fits(r: Round, add: Budget): boolean {
  return (add.threads <= 0 || r.reserved.threads + add.threads <= r.snap.threads)
    && (add.memoryBytes <= 0 || r.reserved.memoryBytes + add.memoryBytes <= r.snap.memoryBytes);
}

const swap = (from: ScalingVariant, to: ScalingVariant): Budget => ({ threads: to.threads - from.threads, memoryBytes: to.memoryBytes - from.memoryBytes });

/**
 * Same-model, profiled variants a switch from v may pick: accuracy within tolerance, fits after the
 * swap. None when most of v's demand names v itself (pinned queries): switching it away would only
 * make the dispatcher load it again for them, and the two would thrash; replicas serve them instead.
 */
function switchable(v: ScalingVariant, r: Round): ScalingVariant[] {
  if (!r.s.switches) return [];
  const mine = r.snap.instances.filter((i) => i.variant === v.id);
  const rate = mine.reduce((a, i) => a + i.arrivalRate, 0);
  if (rate > 0 && mine.reduce((a, i) => a + i.arrivalRate * (i.pinnedShare ?? 0), 0) > rate / 2) return [];
  return [...r.snap.variants.values()].filter((u) => u.model === v.model && u.id !== v.id && u.capacityQps > 0
    && u.accuracy >= v.accuracy - r.s.accuracyTolerance && fits(r, swap(v, u)));
}

function baseDetails(g: Group, r: Round): Details {
  return {
    demand: g.demand, capacity: g.capacity, replicas: g.members.length,
    threadsFree: r.snap.threads - r.reserved.threads, memoryFree: r.snap.memoryBytes - r.reserved.memoryBytes,
  };
}

function planOverload(g: Group, v: ScalingVariant, r: Round): Planned {
  const n = g.members.length;
  const need = g.demand / r.s.headroom;
  const details: Details = { ...baseDetails(g, r), need, loadMs: v.loadMs };
  const free = details.threadsFree!;
  const load = g.demand > g.capacity
    ? `demand ${fmt(g.demand)} q/s > capacity ${fmt(g.capacity)} q/s`
    : `an instance is overloaded at demand ${fmt(g.demand)} q/s, capacity ${fmt(g.capacity)} q/s`;
  const replica = { threads: v.threads, memoryBytes: v.memoryBytes };
  const replicaFits = fits(r, replica);
  const faster = switchable(v, r).filter((u) => u.capacityQps > v.capacityQps);
  const reaching = faster.filter((u) => (n - 1) * v.capacityQps + u.capacityQps >= need)
    .sort((a, b) => a.threads - b.threads || a.loadMs - b.loadMs || byId(a, b));
  const u = reaching[0] ?? faster.sort((a, b) => b.capacityQps - a.capacityQps || a.threads - b.threads || a.loadMs - b.loadMs || byId(a, b))[0];
  const upgrade = (why: string): Planned => {
    const target = pick(g.members, (i) => i.queueLength);
    return {
      action: {
        type: 'switch', reason: 'upgrade', instance: target.id, from: v.id, to: u!.id, why: `${load}; ${why}`,
        details: { ...details, upgradeCapacity: (n - 1) * v.capacityQps + u!.capacityQps, upgradeAddsThreads: u!.threads - v.threads, upgradeLoadMs: u!.loadMs },
      },
      adds: swap(v, u!),
    };
  };
  // An upgrade that falls short of need while a replica would add more capacity is no bargain
  // (batch 8 of a CPU-bound CNN serves barely more than batch 1: measured on cnn-wide).
  const worthIt = u !== undefined && (reaching.includes(u) || u.capacityQps >= 2 * v.capacityQps);
  if (u && worthIt && u.threads - v.threads < v.threads && u.loadMs <= r.s.upgradeLoadFactor * v.loadMs) {
    return upgrade(`replica adds ${threadWord(v.threads)}, upgrade ${u.id} adds ${u.threads - v.threads} and loads in ${fmt(u.loadMs)} ms`);
  }
  if (replicaFits) {
    const why = !u ? (r.s.switches ? 'no upgrade fits' : 'replication only')
      : u.threads - v.threads >= v.threads ? `upgrade ${u.id} adds ${threadWord(u.threads - v.threads)}, no fewer than a replica`
      : u.loadMs > r.s.upgradeLoadFactor * v.loadMs ? `upgrade ${u.id} loads in ${fmt(u.loadMs)} ms > ${r.s.upgradeLoadFactor}x ${fmt(v.loadMs)} ms`
      : `upgrade ${u.id} reaches ${fmt((n - 1) * v.capacityQps + u.capacityQps)} q/s of ${fmt(need)} needed, a replica adds more`;
    return { action: { type: 'replicate', variant: v.id, why: `${load}; ${why}, replica adds ${threadWord(v.threads)} of ${free} free`, details }, adds: replica };
  }
  if (u) return upgrade(`no replica fits (${free} threads free), upgrade ${u.id} does`);
  const target = pick(g.members, (i) => i.queueLength, (i) => i.arrivalRate);
  const none = r.s.switches ? 'neither a replica nor an upgrade fits' : 'replication only: no replica fits';
  return { action: { type: 'mitigate', instance: target.id, variant: v.id, why: `${load}; ${none} in ${free} free threads`, details }, adds: nothing };
}

function planInterference(g: Group, v: ScalingVariant, r: Round): Planned {
  const victim = pick(g.members.filter((i) => i.state === 'interfered'), (i) => i.queueLength);
  const details = baseDetails(g, r);
  // Same maxBatch first: it keeps the batching (and so latency) profile the dispatcher chose.
  const u = switchable(v, r).filter((c) => c.threads > v.threads)
    .sort((a, b) => Number(b.maxBatch === v.maxBatch) - Number(a.maxBatch === v.maxBatch) || a.threads - b.threads || a.loadMs - b.loadMs || byId(a, b))[0];
  if (!u) {
    const none = r.s.switches ? `no variant with more threads fits in ${details.threadsFree} free` : 'replication only, no switch';
    return { action: { type: 'mitigate', instance: victim.id, variant: v.id, why: `instance ${victim.id} interfered; ${none}`, details }, adds: nothing };
  }
  return {
    action: {
      type: 'switch', reason: 'interference', instance: victim.id, from: v.id, to: u.id,
      why: `instance ${victim.id} interfered; ${u.id} uses ${threadWord(u.threads)} instead of ${v.threads}`,
      details: { ...details, fromThreads: v.threads, toThreads: u.threads, loadMs: u.loadMs },
    },
    adds: swap(v, u),
  };
}

/** Same-model variants with fewer threads that would serve demand at half the headroom, cheapest first. */
function cheaperVariants(g: Group, v: ScalingVariant, s: ScalingSettings, variants: Iterable<ScalingVariant>): ScalingVariant[] {
  const n = g.members.length;
  return [...variants].filter((d) => d.model === v.model && d.threads < v.threads && d.accuracy >= v.accuracy - s.accuracyTolerance
    && d.capacityQps * n * s.headroom * 0.5 >= g.demand)
    .sort((a, b) => a.threads - b.threads || a.memoryBytes - b.memoryBytes || byId(a, b));
}

function planScaleDown(g: Group, v: ScalingVariant, r: Round, lowSince: number): Planned | undefined {
  const n = g.members.length;
  const details = { ...baseDetails(g, r), lowForMs: r.snap.now - lowSince };
  const low = `demand ${fmt(g.demand)} q/s low for ${fmt(details.lowForMs / 1000)} s`;
  const shortest = pick(g.members, (i) => -i.queueLength);
  // A replica goes only if the rest still serve demand within headroom; otherwise (the group is
  // low only because a cheaper variant has more capacity) a replica is downgraded instead.
  if (n > 1 && (n - 1) * v.capacityQps * r.s.headroom >= g.demand) {
    return { action: { type: 'remove', instance: shortest.id, variant: v.id, why: `${low}; ${n - 1} replica${n - 1 === 1 ? "" : "s"} serve${n - 1 === 1 ? "s" : ""} it (${fmt((n - 1) * v.capacityQps)} q/s)`, details }, adds: nothing };
  }
  // An instance with no demand at all is left to the unload rule: switching it is a load for nothing.
  if (g.demand === 0) return undefined;
  const d = cheaperVariants(g, v, r.s, switchable(v, r))[0];
  if (!d) return undefined;
  return {
    action: {
      type: 'switch', reason: 'downgrade', instance: shortest.id, from: v.id, to: d.id,
      why: `${low}; ${d.id} serves it with ${threadWord(d.threads)} instead of ${v.threads}`,
      details: { ...details, fromThreads: v.threads, toThreads: d.threads, toCapacity: d.capacityQps, loadMs: d.loadMs },
    },
    adds: swap(v, d),
  };
}

type GroupEntry = ScalingState['groups'][string];

function planGroup(g: Group, prev: GroupEntry, r: Round): { entry: GroupEntry; planned?: Planned } {
  const { snap, s } = r;
  const v = g.v;
  // Waiting groups keep their cooldown but restart any low-demand streak once the new capacity lands.
  if (g.verdict === 'wait' || !v) return { entry: { lastActionAt: prev.lastActionAt } };
  const n = g.members.length;
  const low = g.verdict === 'normal'
    && ((n > 1 && g.demand <= (n - 1) * v.capacityQps * s.headroom * 0.5) || (s.switches && cheaperVariants(g, v, s, snap.variants.values()).length > 0));
  const entry = { lastActionAt: prev.lastActionAt, lowSince: low ? prev.lowSince ?? snap.now : undefined };
  if (prev.lastActionAt !== undefined && snap.now - prev.lastActionAt < s.cooldownMs) return { entry };
  let planned: Planned | undefined;
  const lone = g.members[0]!;
  if (g.verdict === 'overloaded') planned = planOverload(g, v, r);
  else if (n === 1 && g.demand === 0 && lone.idleMs >= s.unloadIdleAfterMs && !lone.pinned) {
    planned = {
      action: { type: 'unload', instance: lone.id, variant: v.id, why: `no arrivals for ${fmt(lone.idleMs / 1000)} s (unload after ${fmt(s.unloadIdleAfterMs / 1000)} s)`, details: { ...baseDetails(g, r), idleMs: lone.idleMs } },
      adds: nothing,
    };
  } else if (g.verdict === 'interfered') planned = planInterference(g, v, r);
  else if (entry.lowSince !== undefined && snap.now - entry.lowSince >= s.scaleDownAfterMs) planned = planScaleDown(g, v, r, entry.lowSince);
  return planned ? { entry: { lastActionAt: snap.now }, planned } : { entry };
}

export function planWorkerScaling(state: ScalingState, snap: WorkerScalingSnapshot, settings: ScalingSettings = defaultScalingSettings): { state: ScalingState; actions: ScalingAction[] } {
  const r: Round = { snap, s: settings, reserved: reservedBy(snap) };
  const groups: ScalingState['groups'] = {};
  const actions: ScalingAction[] = [];
  for (const g of groupsOf(snap).sort(byUrgency)) {
    const { entry, planned } = planGroup(g, state.groups[g.id] ?? {}, r);
    if (planned) {
      actions.push(planned.action);
      // Only growth is booked: a replaced or removed instance keeps running (draining) past this call.
      r.reserved = { threads: r.reserved.threads + Math.max(0, planned.adds.threads), memoryBytes: r.reserved.memoryBytes + Math.max(0, planned.adds.memoryBytes) };
    }
    const kept = Object.fromEntries(Object.entries(entry).filter(([, x]) => x !== undefined));
    if (Object.keys(kept).length > 0) groups[g.id] = kept;
  }
  return { state: { groups }, actions };
}
