// The selection policy on hand-made snapshots: prefer healthy running instances, else load the
// cheapest feasible variant, else explain what is achievable.
import t from 'tap';
import { costPerQuery, selectVariant, type CandidateProfile, type InstanceView, type Snapshot, type WorkerView } from '../actors/dispatcher/select-variant.js';

const profile = (model: string, accuracy: number, b1: number, extra: Partial<CandidateProfile> = {}): CandidateProfile => ({
  variantId: `${model}.fp32-all-b8-t1-cpu`, model, task: 'digits', hardwareClass: 'cpu', accuracy, maxBatch: 8, threads: 1,
  loadMs: 2, peakMemoryBytes: 1e6, latency: [{ batch: 1, p50Ms: b1 }, { batch: 8, p50Ms: b1 * 3 }], ...extra,
});
const small = profile('small', 0.9, 0.03);
const mid = profile('mid', 0.94, 0.06);
const big = profile('big', 0.96, 1.0);
const worker = (id: string, price: number, extra: Partial<WorkerView> = {}): WorkerView => ({ id, hardwareClass: 'cpu', pricePerHour: price, freeThreads: 2, freeMemoryBytes: 1e9, ...extra });

function snap(instances: InstanceView[] = [], workers = [worker('w1', 0.1), worker('w2', 0.2)]): Snapshot {
  return { profiles: [small, mid, big], workers: new Map(workers.map((w) => [w.id, w])), instances };
}
const req = { task: 'digits', batch: 1, latencyMs: 10, minAccuracy: 0.85 };

t.test('nothing running: loads the cheapest feasible variant on the cheaper worker', async (t) => {
  t.same(selectVariant(snap(), req), { kind: 'load', variantId: 'small.fp32-all-b8-t1-cpu', workerId: 'w1', expectedMs: 2.03, costPerQuery: costPerQuery(0.1, 0.03, 1) });
});

t.test('the accuracy floor picks the more accurate model', async (t) => {
  t.match(selectVariant(snap(), { ...req, minAccuracy: 0.95 }), { kind: 'load', variantId: 'big.fp32-all-b8-t1-cpu' });
  t.match(selectVariant(snap(), { ...req, minAccuracy: 0.93 }), { kind: 'load', variantId: 'mid.fp32-all-b8-t1-cpu' });
});

t.test('a healthy running instance wins over loading a cheaper one; the least loaded first', async (t) => {
  const insts: InstanceView[] = [
    { variantId: mid.variantId, workerId: 'w1', state: 'active', outstanding: 5 },
    { variantId: mid.variantId, workerId: 'w2', state: 'active', outstanding: 1 },
  ];
  t.match(selectVariant(snap(insts), req), { kind: 'running', variantId: mid.variantId, workerId: 'w2' });
});

t.test('overloaded and interfered instances are passed over', async (t) => {
  const insts: InstanceView[] = [
    { variantId: mid.variantId, workerId: 'w1', state: 'overloaded', outstanding: 0 },
    { variantId: big.variantId, workerId: 'w2', state: 'interfered', outstanding: 0 },
  ];
  t.match(selectVariant(snap(insts), req), { kind: 'load', variantId: small.variantId });
});

t.test('load time counts against the deadline; workers without room are skipped', async (t) => {
  const slowLoad = { ...snap(), profiles: [profile('small', 0.9, 0.03, { loadMs: 50 })] };
  t.match(selectVariant(slowLoad, req), { kind: 'infeasible', reason: /no worker can run/ });
  const full = snap([], [worker('w1', 0.1, { freeMemoryBytes: 10 })]);
  t.match(selectVariant(full, req), { kind: 'infeasible' });
});

t.test('infeasible answers list what is achievable', async (t) => {
  const r = selectVariant(snap(), { ...req, latencyMs: 0.5, minAccuracy: 0.95 });
  t.same(r, { kind: 'infeasible', reason: 'no variant meets both the accuracy floor and the latency objective', achievable: { lowestLatencyMs: 1, atAccuracy: 0.95, highestAccuracy: 0.94, withinMs: 0.5 } });
  t.match(selectVariant(snap(), { ...req, task: 'speech' }), { kind: 'infeasible', reason: 'no registered variant matches' });
});

t.test('model- and variant-specific queries fix the choice; batch beyond the cap is infeasible', async (t) => {
  t.match(selectVariant(snap(), { ...req, model: 'small', minAccuracy: 0.99 }), { kind: 'load', variantId: small.variantId });
  t.match(selectVariant(snap(), { ...req, variant: big.variantId }), { kind: 'load', variantId: big.variantId });
  t.match(selectVariant(snap(), { ...req, batch: 16 }), { kind: 'infeasible' });
  t.match(selectVariant(snap(), { ...req, maxCostPerQuery: 1e-12 }), { kind: 'infeasible' });
});
