// The selection policy as a plain scan of every profile, instance and worker: the reference that
// the indexed policy (select-index.ts) must agree with (test/select-variant.test.ts, bench/selection.ts).
import {
  bestInstance, infeasible, latencyFor, matches, withinObjective, costPerQuery, workersHosting,
  type CandidateProfile, type Selection, type SelectionRequest, type Snapshot,
} from './selection-model.js';

/** The policy as a full scan: every profile, instance and worker x feasible profile, per decision. */
export function selectVariantScan(s: Snapshot, r: SelectionRequest): Selection {
  const mine = s.profiles.filter((p) => matches(p, r));
  // Explicit variant/model queries fix the accuracy choice; only the SLO's latency still applies.
  const floor = r.variant ? 0 : r.minAccuracy;
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
      const ms = latencyFor(p, r.batch, r.elements)!;
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

  const lat = mine.filter((p) => p.accuracy >= floor).map((p) => latencyFor(p, r.batch, r.elements)).filter((v): v is number => v !== undefined);
  const acc = mine.filter((p) => withinObjective(p, r)).map((p) => p.accuracy);
  return infeasible(r, floor, mine.length, feasible.length, lat.length ? Math.min(...lat) : undefined, acc.length ? Math.max(...acc) : undefined);
}

