// Pure policy: which variant, on which worker, serves a query — or why none can. A function of a
// metadata snapshot and the request only, so the live dispatcher, tests and the trace simulator
// share it. Groundwork for the controller issue (its host and KV-fed snapshot come with #4).

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
  pricePerHour: number;
  freeThreads: number;
  freeMemoryBytes: number;
}

export type InstanceState = 'loading' | 'active' | 'overloaded' | 'interfered' | 'draining';

export interface InstanceView {
  variantId: string;
  workerId: string;
  state: InstanceState;
  /** Queued plus in flight: last report plus what this dispatcher sent since. */
  outstanding: number;
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
}

export type Selection =
  | { kind: 'running'; variantId: string; workerId: string; expectedMs: number; costPerQuery: number }
  | { kind: 'load'; variantId: string; workerId: string; expectedMs: number; costPerQuery: number }
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

/** Worker time the query uses, priced: hourly price x its share of one batch call. */
export function costPerQuery(pricePerHour: number, latencyMs: number, batch: number): number {
  return (pricePerHour / 3_600_000) * (latencyMs / batch);
}

function matches(p: CandidateProfile, r: SelectionRequest): boolean {
  if (r.variant) return p.variantId === r.variant;
  if (r.model) return p.model === r.model;
  return p.task === r.task;
}

export function selectVariant(s: Snapshot, r: SelectionRequest): Selection {
  const mine = s.profiles.filter((p) => matches(p, r));
  // Explicit variant/model queries fix the accuracy choice; only the SLO's latency still applies.
  const floor = r.variant || r.model ? 0 : r.minAccuracy;
  const feasible = mine.filter((p) => p.accuracy >= floor && (latencyFor(p, r.batch) ?? Infinity) <= r.latencyMs);
  const byId = new Map(feasible.map((p) => [`${p.variantId}@${p.hardwareClass}`, p]));

  // 1. A running, healthy instance: least outstanding work first, then cost.
  let best: Extract<Selection, { kind: 'running' }> | undefined;
  let bestLoad = Infinity;
  for (const inst of s.instances) {
    if (inst.state !== 'active') continue;
    const w = s.workers.get(inst.workerId);
    const p = w && byId.get(`${inst.variantId}@${w.hardwareClass}`);
    if (!w || !p) continue;
    const ms = latencyFor(p, r.batch)!;
    const cost = costPerQuery(w.pricePerHour, ms, r.batch);
    if (r.maxCostPerQuery !== undefined && cost > r.maxCostPerQuery) continue;
    if (inst.outstanding < bestLoad || (inst.outstanding === bestLoad && best && cost < best.costPerQuery)) {
      best = { kind: 'running', variantId: inst.variantId, workerId: w.id, expectedMs: ms, costPerQuery: cost };
      bestLoad = inst.outstanding;
    }
  }
  if (best) return best;

  // 2. Load the cheapest feasible variant on the worker with most headroom; load time counts.
  let load: Extract<Selection, { kind: 'load' }> | undefined;
  let headroom = -Infinity;
  const byClass = new Map<string, CandidateProfile[]>();
  for (const p of feasible) {
    const list = byClass.get(p.hardwareClass);
    if (list) list.push(p); else byClass.set(p.hardwareClass, [p]);
  }
  for (const w of s.workers.values()) {
    for (const p of byClass.get(w.hardwareClass) ?? []) {
      if (p.threads > w.freeThreads || p.peakMemoryBytes > w.freeMemoryBytes) continue;
      const ms = latencyFor(p, r.batch)!;
      if (p.loadMs + ms > r.latencyMs) continue;
      const cost = costPerQuery(w.pricePerHour, ms, r.batch);
      if (r.maxCostPerQuery !== undefined && cost > r.maxCostPerQuery) continue;
      const room = w.freeThreads - p.threads;
      if (!load || cost < load.costPerQuery || (cost === load.costPerQuery && room > headroom)) {
        load = { kind: 'load', variantId: p.variantId, workerId: w.id, expectedMs: p.loadMs + ms, costPerQuery: cost };
        headroom = room;
      }
    }
  }
  if (load) return load;

  // 3. Infeasible: say what is achievable now.
  const lat = mine.filter((p) => p.accuracy >= floor).map((p) => latencyFor(p, r.batch)).filter((v): v is number => v !== undefined);
  const acc = mine.filter((p) => (latencyFor(p, r.batch) ?? Infinity) <= r.latencyMs).map((p) => p.accuracy);
  const reason = mine.length === 0 ? 'no registered variant matches'
    : feasible.length === 0 ? 'no variant meets both the accuracy floor and the latency objective'
    : 'no worker can run a feasible variant in time';
  return {
    kind: 'infeasible', reason,
    achievable: {
      ...(lat.length ? { lowestLatencyMs: Math.min(...lat) } : {}), atAccuracy: floor,
      ...(acc.length ? { highestAccuracy: Math.max(...acc) } : {}), withinMs: r.latencyMs,
    },
  };
}
