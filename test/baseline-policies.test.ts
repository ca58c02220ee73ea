// The baseline selection policies on hand-made snapshots: a fixed variant per model that never
// switches, always the fastest, always the cheapest; each keeps the accuracy floor and answers
// 'busy' and 'infeasible' as the model-less policy does.
import t from 'tap';
import { costPerQuery, selectVariant, type CandidateProfile, type InstanceView, type Snapshot, type WorkerView } from '../actors/dispatcher/select-variant.js';
import { cheapestVariant, defaultFixedChoice, fastestVariant, fixedVariant, policies, policyNamed, workersFor } from '../actors/dispatcher/baselines.js';

const profile = (model: string, kind: string, accuracy: number, b1: number, extra: Partial<CandidateProfile> = {}): CandidateProfile => ({
  variantId: `${model}.${kind}`, model, task: 'digits', hardwareClass: 'cpu', accuracy, precision: 'fp32', maxBatch: 8, threads: 1,
  loadMs: 0.005, peakMemoryBytes: 1e6, latency: [{ batch: 1, p50Ms: b1 }, { batch: 8, p50Ms: b1 * 3 }], ...extra,
});
const small = profile('small', 'fp32-b8-t1', 0.9, 0.03);
const midB8 = profile('mid', 'fp32-b8-t1', 0.94, 0.06);           // cheapest at 0.94: 1 thread x 0.06 ms
const midT2 = profile('mid', 'fp32-b8-t2', 0.94, 0.04, { threads: 2 }); // fastest at 0.94, costs 2 x 0.04 ms
const midB32 = profile('mid', 'fp32-b32-t1', 0.94, 0.07, { maxBatch: 32, latency: [{ batch: 1, p50Ms: 0.07 }, { batch: 32, p50Ms: 0.5 }] });
const midInt8 = profile('mid', 'int8-b8-t1', 0.935, 0.02, { precision: 'int8' }); // fastest and cheapest at 0.93
const big = profile('big', 'fp32-b8-t1', 0.96, 1.0);
const worker = (id: string, price: number): WorkerView => ({ id, hardwareClass: 'cpu', pricePerThreadHour: price, freeThreads: 2, freeMemoryBytes: 1e9 });

function snap(instances: InstanceView[] = [], workers = [worker('w1', 0.1), worker('w2', 0.2)]): Snapshot {
  return { profiles: [small, midInt8, midB8, midT2, midB32, big], workers: new Map(workers.map((w) => [w.id, w])), instances };
}
const active = (p: CandidateProfile, workerId: string, outstanding = 0): InstanceView => ({ variantId: p.variantId, workerId, state: 'active', outstanding });
const req = { task: 'digits', batch: 1, latencyMs: 10, minAccuracy: 0.85 };
const all = { fixed: fixedVariant(), fastest: fastestVariant, cheapest: cheapestVariant };

t.test('default fixed choice: fp32 first, then the most accurate, then the largest max batch', async (t) => {
  t.same(Object.fromEntries(defaultFixedChoice(snap().profiles)), { small: small.variantId, mid: midB32.variantId, big: big.variantId });
});

t.test('fixed: a task query goes to the fixed variant of the most accurate model at the floor, whatever the objective', async (t) => {
  const fixed = fixedVariant();
  t.match(fixed(snap(), req), { kind: 'load', variantId: big.variantId, workerId: 'w1' });
  t.match(selectVariant(snap(), req), { kind: 'load', variantId: midInt8.variantId }, 'the model-less policy takes the cheapest that meets both');
  // big takes 1 ms: a 0.5 ms objective is infeasible for the baseline, though mid.int8 would meet it.
  t.match(fixed(snap(), { ...req, latencyMs: 0.5 }), { kind: 'infeasible', achievable: { lowestLatencyMs: 1, atAccuracy: 0.85 } });
  t.match(selectVariant(snap(), { ...req, latencyMs: 0.5 }), { kind: 'load', variantId: midInt8.variantId });
  t.match(fixed(snap(), { ...req, minAccuracy: 0.97 }), { kind: 'infeasible', reason: /accuracy floor/ }, 'no fixed variant meets the floor');
});

t.test('fixed: never another variant of the model, even a running faster one', async (t) => {
  const fixed = fixedVariant();
  const q = { model: 'mid', batch: 1, latencyMs: 10, minAccuracy: 0 };
  const int8Running = snap([active(midInt8, 'w1'), active(midT2, 'w2')]);
  t.match(selectVariant(int8Running, q), { kind: 'running', variantId: midInt8.variantId });
  t.match(fixed(int8Running, q), { kind: 'load', variantId: midB32.variantId, workerId: 'w1' }, 'a worker without an instance of it loads it');
  t.match(fixed(snap([...int8Running.instances, active(midB32, 'w2')]), q), { kind: 'running', variantId: midB32.variantId, workerId: 'w2' });
  // Its only instance is 9 ms behind on the only worker; the idle int8 one would finish at once.
  const one = snap([{ ...active(midB32, 'w1'), outstanding: 32 * 18 }, active(midInt8, 'w1')], [worker('w1', 0.1)]);
  t.match(fixed(one, { ...q, latencyMs: 5 }), { kind: 'busy', variantId: midB32.variantId, workerId: 'w1' });
  t.match(selectVariant(one, { ...q, latencyMs: 5 }), { kind: 'running', variantId: midInt8.variantId });
  t.match(fixedVariant({ mid: midInt8.variantId })(int8Running, q), { kind: 'running', variantId: midInt8.variantId }, 'a given choice overrides the rule');
  t.match(fixedVariant(new Map([['mid', midB8.variantId]]))(snap(), q), { kind: 'load', variantId: midB8.variantId }, 'a Map works too');
});

t.test('fastest: the lowest latency at the floor, cost ignored', async (t) => {
  t.match(fastestVariant(snap(), { ...req, minAccuracy: 0.93 }), { kind: 'load', variantId: midInt8.variantId });
  t.match(fastestVariant(snap(), { ...req, minAccuracy: 0.94 }), { kind: 'load', variantId: midT2.variantId, costPerQuery: costPerQuery(0.2, 0.04, 1) });
  t.match(selectVariant(snap(), { ...req, minAccuracy: 0.94 }), { kind: 'load', variantId: midB8.variantId }, 'the model-less policy takes the cheaper one');
  t.match(fastestVariant(snap(), req), { kind: 'load', variantId: midInt8.variantId }, 'even over a more accurate slower one');
  // Its instance is busy on the only worker: busy, not the idle slower variant.
  const one = snap([{ ...active(midT2, 'w1'), outstanding: 8 * 100 }, active(midB8, 'w1')], [worker('w1', 0.1)]);
  t.match(fastestVariant(one, { ...req, minAccuracy: 0.94, latencyMs: 5 }), { kind: 'busy', variantId: midT2.variantId });
});

t.test('cheapest: the lowest cost per query at the floor, the latency objective ignored', async (t) => {
  t.match(cheapestVariant(snap(), { ...req, minAccuracy: 0.94 }), { kind: 'load', variantId: midB8.variantId, workerId: 'w1' });
  // A running instance of a dearer variant does not take the query, as it would under the model-less policy.
  const t2Running = snap([active(midT2, 'w1')]);
  t.match(selectVariant(t2Running, { ...req, minAccuracy: 0.94 }), { kind: 'running', variantId: midT2.variantId });
  t.match(cheapestVariant(t2Running, { ...req, minAccuracy: 0.94 }), { kind: 'load', variantId: midB8.variantId, workerId: 'w1' });
  // 0.05 ms: midT2 would meet it, the cheapest (0.06 ms) does not.
  t.match(cheapestVariant(snap(), { ...req, minAccuracy: 0.94, latencyMs: 0.05 }), { kind: 'infeasible', achievable: { lowestLatencyMs: 0.06 } });
  t.match(selectVariant(snap(), { ...req, minAccuracy: 0.94, latencyMs: 0.05 }), { kind: 'load', variantId: midT2.variantId });
});

t.test('every baseline keeps the accuracy floor and answers infeasible as selectVariant does', async (t) => {
  for (const [name, policy] of Object.entries(all)) {
    const over = policy(snap(), { ...req, minAccuracy: 0.99 });
    t.same(over, selectVariant(snap(), { ...req, minAccuracy: 0.99 }), `${name}: nothing meets 0.99`);
    t.match(policy(snap(), { ...req, minAccuracy: 0.95 }), { kind: 'load', variantId: big.variantId }, `${name}: only big meets 0.95`);
    t.match(policy(snap(), { task: 'speech', batch: 1, latencyMs: 10, minAccuracy: 0 }), { kind: 'infeasible', reason: 'no registered variant matches' }, `${name}: unknown task`);
    t.same(policy(snap(), { variant: midT2.variantId, batch: 1, latencyMs: 10, minAccuracy: 0 }), selectVariant(snap(), { variant: midT2.variantId, batch: 1, latencyMs: 10, minAccuracy: 0 }), `${name}: a named variant is served as asked`);
  }
});

t.test('clipper selects as fixed does; its workers replicate only and batch by AIMD', async (t) => {
  const clipper = policyNamed('clipper');
  const requests = [
    req, { ...req, latencyMs: 0.5 }, { ...req, minAccuracy: 0.97 }, { ...req, minAccuracy: 0.94 },
    { model: 'mid', batch: 1, latencyMs: 10, minAccuracy: 0 }, { model: 'mid', batch: 4, latencyMs: 5, minAccuracy: 0 },
    { variant: midT2.variantId, batch: 1, latencyMs: 10, minAccuracy: 0 },
  ];
  const snapshots = [
    snap(), snap([active(midInt8, 'w1'), active(midT2, 'w2')]), snap([active(midB32, 'w2'), active(big, 'w1')]),
    snap([{ ...active(midB32, 'w1'), outstanding: 32 * 18 }, active(midInt8, 'w1')], [worker('w1', 0.1)]),
  ];
  for (const s of snapshots) for (const r of requests) t.same(clipper(s, r), fixedVariant()(s, r), JSON.stringify(r));
  t.same(workersFor('clipper'), { replicationOnly: true, batching: 'aimd' });
  t.same(workersFor('fixed'), { replicationOnly: true, batching: 'work-conserving' });
  for (const name of ['fastest', 'cheapest']) t.same(workersFor(name), { replicationOnly: true, batching: 'work-conserving' }, `${name}: replication only`);
  t.same(workersFor('infaas'), { replicationOnly: false, batching: 'work-conserving' }, 'infaas: default workers');
});

t.test('the registry names every policy; an unknown name lists them', async (t) => {
  t.equal(policyNamed('infaas'), selectVariant);
  t.same(Object.keys(policies), ['infaas', 'fixed', 'clipper', 'fastest', 'cheapest']);
  t.throws(() => policyNamed('nexus'), /unknown selection policy "nexus" \(one of: infaas, fixed, clipper, fastest, cheapest\)/);
  t.throws(() => policyNamed('toString'), /unknown selection policy/);
});
