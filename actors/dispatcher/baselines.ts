// Baseline selection policies: the paper's comparison systems as alternatives to the model-less
// `selectVariant`, with the same signature, so all run in the same dispatcher on the same hardware,
// models and trace (issue #10, "Baselines as policies"). Each one only decides WHICH variant may
// serve a query; it then calls selectVariant on the snapshot narrowed to that variant's profiles, so
// where the query runs (an instance expected to finish first, else a load on a worker without a busy
// one) and the 'busy' and 'infeasible' answers follow the same rules and count the same errors.
//
// - fixedVariant(choice): the developer picked one variant per model up front (INFaaS's
//   "fixed variant" baselines, where the developer chooses a variant and the system only
//   replicates it). Default rule per model: fp32 before int8, then the most accurate, then the
//   largest max batch, then the fewest threads, then the first in snapshot order. A task query goes
//   to the fixed variant of the model whose fixed variant is the most accurate of those meeting the
//   accuracy floor; the latency objective plays no part in that choice (that is the baseline's
//   point), only in 'busy' / 'infeasible'. The rule is evaluated on the profiles at hand: a model
//   registered later gets its fixed variant when it appears.
// - clipper: the fixed variant (same rule as `fixed`) served with Clipper's adaptive batching
//   (Crankshaw et al., NSDI'17): the workers replicate only and cap each instance's batch by AIMD
//   (actors/instance/batching.ts, aimdUpdate). Selection is fixedVariant's; the difference is in
//   the workers, which `policyWorkers` says how to start.
// - fastestVariant: the variant (on a hardware class) with the lowest profiled latency at the
//   query's batch among those meeting the accuracy floor; cost ignored.
// - cheapestVariant: the variant with the lowest cost per query (its threads x the cheapest worker
//   price of its class x its latency share of one batch) among those meeting the floor; latency
//   objective ignored except for 'busy' / 'infeasible'.
//
// Queries naming a variant go to selectVariant unchanged (the client already fixed the choice).
// Queries naming a model choose among that model's variants meeting the floor the query states (none
// by default), as selectVariant does: a model's int8 variants may be measurably less accurate. When no candidate meets the floor, selectVariant sees all of the baseline's candidates and
// answers 'infeasible' with what they achieve.
import { selectVariant } from './select-index.js';
import {
  costPerQuery, latencyFor, matches,
  type CandidateProfile, type Selection, type SelectionRequest, type Snapshot,
} from './selection-model.js';
import type { SelectionPolicy } from './host.js';
import type { BatchingMode } from '../instance/batching.js';

/** Narrowed snapshots per snapshot object and kept set: selectVariant's index is cached per snapshot object. */
const narrowed = new WeakMap<Snapshot, Map<string, Snapshot>>();

/**
 * selectVariant over `kept` only. The narrowed snapshot shares the workers and instances of `s`, so
 * the dispatcher's in-place bumps of `outstanding` count, and is reused while `s` is.
 */
export function selectAmong(s: Snapshot, r: SelectionRequest, kept: CandidateProfile[]): Selection {
  const key = kept.map((p) => `${p.variantId}@${p.hardwareClass}`).join(' ');
  let byKey = narrowed.get(s);
  if (!byKey) narrowed.set(s, byKey = new Map());
  let sub = byKey.get(key);
  if (!sub || sub.workers !== s.workers || sub.instances !== s.instances || sub.profiles.some((p, i) => p !== kept[i])) {
    byKey.set(key, sub = { profiles: kept, workers: s.workers, instances: s.instances });
  }
  return selectVariant(sub, r);
}

/** The request's candidates: its matching profiles, and the floor selectVariant applies to them. */
function candidates(s: Snapshot, r: SelectionRequest): { mine: CandidateProfile[]; floor: number } {
  return { mine: s.profiles.filter((p) => matches(p, r)), floor: r.minAccuracy };
}

/** Keep the profile(s) of the variant@class that ranks lowest; ties go to snapshot order. */
function lowest(ps: CandidateProfile[], score: (p: CandidateProfile) => number[]): CandidateProfile[] {
  let best: CandidateProfile | undefined;
  let bestScore: number[] = [];
  for (const p of ps) {
    const sc = score(p);
    const d = sc.findIndex((x, i) => x !== bestScore[i]);
    if (!best || (d >= 0 && sc[d]! < bestScore[d]!)) { best = p; bestScore = sc; }
  }
  return best ? [best] : [];
}

/** A policy that keeps, per request, the profiles `pick` chooses among those meeting the floor. */
function narrowing(pick: (s: Snapshot, r: SelectionRequest, atFloor: CandidateProfile[]) => CandidateProfile[]): SelectionPolicy {
  return (s, r) => {
    if (r.variant) return selectVariant(s, r);
    const { mine, floor } = candidates(s, r);
    const atFloor = mine.filter((p) => p.accuracy >= floor);
    // Nothing meets the floor: selectVariant answers infeasible from the full set, as it would.
    if (atFloor.length === 0) return selectVariant(s, r);
    return selectAmong(s, r, pick(s, r, atFloor));
  };
}

/** The lowest-latency variant at the accuracy floor (INFaaS's "always the fastest" baseline); cost ignored. */
export const fastestVariant: SelectionPolicy = narrowing((_s, r, ps) =>
  lowest(ps.filter((p) => latencyFor(p, r.batch, r.elements) !== undefined), (p) => [latencyFor(p, r.batch, r.elements)!]));

/** Cheapest worker price per thread-hour of each hardware class (Infinity when none of its workers is up). */
function classPrices(s: Snapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const w of s.workers.values()) out.set(w.hardwareClass, Math.min(out.get(w.hardwareClass) ?? Infinity, w.pricePerThreadHour));
  return out;
}

/** The lowest-cost variant at the accuracy floor ("always the cheapest" baseline); latency objective ignored. */
export const cheapestVariant: SelectionPolicy = narrowing((s, r, ps) => {
  const prices = classPrices(s);
  return lowest(ps.filter((p) => latencyFor(p, r.batch, r.elements) !== undefined), (p) => {
    const ms = latencyFor(p, r.batch, r.elements)!;
    // No worker of the class: rank it last, by core-time, so that a cluster with none still answers.
    return [costPerQuery((prices.get(p.hardwareClass) ?? Infinity) * p.threads, ms, r.batch), p.threads * ms, ms];
  });
});

/** Model -> its fixed variant id. */
export type FixedChoice = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

const defaultChoices = new WeakMap<readonly CandidateProfile[], { length: number; byModel: Map<string, string> }>();

/** The default rule of fixedVariant: fp32 first, then most accurate, largest max batch, fewest threads. */
export function defaultFixedChoice(profiles: readonly CandidateProfile[]): Map<string, string> {
  const cached = defaultChoices.get(profiles);
  if (cached && cached.length === profiles.length) return cached.byModel;
  const best = new Map<string, CandidateProfile>();
  const rank = (p: CandidateProfile) => [p.precision === 'int8' ? 1 : 0, -p.accuracy, -p.maxBatch, p.threads];
  for (const p of profiles) {
    const b = best.get(p.model);
    if (!b) { best.set(p.model, p); continue; }
    const [x, y] = [rank(p), rank(b)];
    const d = x.findIndex((v, i) => v !== y[i]);
    if (d >= 0 && x[d]! < y[d]!) best.set(p.model, p);
  }
  const byModel = new Map([...best].map(([m, p]) => [m, p.variantId]));
  defaultChoices.set(profiles, { length: profiles.length, byModel });
  return byModel;
}

/**
 * One variant per model, chosen up front and never switched (see the module header). `choice`
 * overrides the default rule for the models it names. `hardwareClass`, when given, fixes the
 * hardware too (the developer deployed the variant on CPUs, say): profiles of other classes are
 * never chosen. Without it the fixed variant may run on any class that has a profile of it.
 */
export function fixedVariant(choice?: FixedChoice, hardwareClass?: string): SelectionPolicy {
  const given = choice instanceof Map ? choice : new Map(Object.entries(choice ?? {}));
  return (s, r) => {
    if (r.variant) return selectVariant(s, r);
    const defaults = defaultFixedChoice(s.profiles);
    const fixedOf = (model: string) => given.get(model) ?? defaults.get(model);
    const { mine, floor } = candidates(s, r);
    const fixed = mine.filter((p) => p.variantId === fixedOf(p.model) && (hardwareClass === undefined || p.hardwareClass === hardwareClass));
    // The model whose fixed variant is the most accurate at the floor (first in snapshot order on a tie).
    let pick: CandidateProfile | undefined;
    for (const p of fixed) if (p.accuracy >= floor && (!pick || p.accuracy > pick.accuracy)) pick = p;
    return selectAmong(s, r, pick ? fixed.filter((p) => p.variantId === pick!.variantId) : fixed);
  };
}

/** The selection policies by name: `infaas` is the model-less policy, the rest are the baselines. */
export const policies: Readonly<Record<string, SelectionPolicy>> = Object.freeze({
  infaas: selectVariant,
  fixed: fixedVariant(),
  clipper: fixedVariant(),
  fastest: fastestVariant,
  cheapest: cheapestVariant,
});

export const policyNames = Object.keys(policies);

/** What a policy asks of the workers that serve it: model autoscaling without switches, and the batching mode. */
export interface PolicyWorkers {
  replicationOnly: boolean;
  batching: BatchingMode;
}

const modelLess: PolicyWorkers = Object.freeze({ replicationOnly: false, batching: 'work-conserving' });

/**
 * The worker settings per policy (defaults for those not named): the baselines never switch a
 * variant (their selection would not follow), and clipper also batches adaptively.
 */
export const policyWorkers: Readonly<Record<string, PolicyWorkers>> = Object.freeze({
  fixed: Object.freeze({ replicationOnly: true, batching: 'work-conserving' }),
  // Their selection keeps one variant per request: a worker switching it to another (an upgrade
  // under load) leaves the new instance idle and the chosen one overloaded. Found by the trace
  // simulator: "fastest" upgraded its b1 instance to b32 every 5 s and served 37 % at 8,000 q/s.
  fastest: Object.freeze({ replicationOnly: true, batching: 'work-conserving' }),
  cheapest: Object.freeze({ replicationOnly: true, batching: 'work-conserving' }),
  clipper: Object.freeze({ replicationOnly: true, batching: 'aimd' }),
});

/** The worker settings the policy of that name needs. */
export function workersFor(name: string): PolicyWorkers {
  return Object.hasOwn(policyWorkers, name) ? policyWorkers[name]! : modelLess;
}

/** The policy of that name, or an error that lists the names. */
export function policyNamed(name: string): SelectionPolicy {
  const p = Object.hasOwn(policies, name) ? policies[name] : undefined;
  if (!p) throw new Error(`unknown selection policy "${name}" (one of: ${policyNames.join(', ')})`);
  return p;
}
