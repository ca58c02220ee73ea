// The model-autoscaler's policy on hand-made worker snapshots: overload, interference, low load
// and idleness, each under the worker's thread and memory budget.
import t from 'tap';
import {
  defaultScalingSettings, initialScalingState, planWorkerScaling,
  type ScalingInstance, type ScalingState, type ScalingVariant, type WorkerScalingSnapshot,
} from '../actors/model-autoscaler/plan.js';

const T0 = 1_700_000_000_000;
const variant = (suffix: string, extra: Partial<ScalingVariant> = {}): ScalingVariant => ({
  id: `mlp.${suffix}`, model: 'mlp', precision: 'fp32', maxBatch: 8, threads: 1, accuracy: 0.97,
  loadMs: 10, memoryBytes: 10e6, capacityQps: 100, ...extra,
});
const b8t1 = variant('fp32-all-b8-t1-cpu');
const b32t1 = variant('fp32-all-b32-t1-cpu', { maxBatch: 32, loadMs: 12, memoryBytes: 12e6, capacityQps: 180 });
const b8t2 = variant('fp32-all-b8-t2-cpu', { threads: 2, loadMs: 11, capacityQps: 170 });
const b32t2 = variant('fp32-all-b32-t2-cpu', { maxBatch: 32, threads: 2, loadMs: 13, capacityQps: 300 });

const inst = (id: string, v: ScalingVariant, extra: Partial<ScalingInstance> = {}): ScalingInstance => ({
  id, variant: v.id, state: 'active', arrivalRate: 0, queueLength: 0, idleMs: 0, ...extra,
});
function snap(instances: ScalingInstance[], variants: ScalingVariant[], extra: Partial<WorkerScalingSnapshot> = {}): WorkerScalingSnapshot {
  return { now: T0, threads: 4, memoryBytes: 1e9, instances, variants: new Map(variants.map((v) => [v.id, v])), ...extra };
}
const plan = (s: WorkerScalingSnapshot, state: ScalingState = initialScalingState) => planWorkerScaling(state, s);

t.test('replicates under overload when a replica fits and no upgrade is cheaper', async (t) => {
  // b8t2 would add a whole thread, as many as a replica does: no saving, so a plain replica.
  const r = plan(snap([inst('i1', b8t1, { arrivalRate: 150 })], [b8t1, b8t2]));
  t.match(r.actions, [{ type: 'replicate', variant: b8t1.id, details: { demand: 150, capacity: 100, need: 187.5, threadsFree: 3 } }]);
  t.equal(r.actions.length, 1);
  t.match(r.actions[0]!.why, /demand 150 q\/s > capacity 100 q\/s; upgrade mlp\.fp32-all-b8-t2-cpu adds 1 thread, no fewer than a replica/);
  t.same(r.state.groups[b8t1.id], { lastActionAt: T0 });

  const slow = { ...b32t1, loadMs: 16 }; // over 1.5 x 10 ms: a replica is ready sooner
  const s = plan(snap([inst('i1', b8t1, { arrivalRate: 150 })], [b8t1, slow]));
  t.match(s.actions, [{ type: 'replicate', variant: b8t1.id }]);
  t.match(s.actions[0]!.why, /loads in 16 ms > 1\.5x 10 ms/);
});

t.test('upgrades to a bigger-batch variant with the same threads, replacing the longest queue', async (t) => {
  const r = plan(snap([inst('i1', b8t1, { arrivalRate: 130 })], [b8t1, b32t1]));
  t.same(r.actions.map((a) => a.type === 'switch' && [a.reason, a.instance, a.from, a.to]), [['upgrade', 'i1', b8t1.id, b32t1.id]]);
  t.match(r.actions[0]!.why, /replica adds 1 thread, upgrade mlp\.fp32-all-b32-t1-cpu adds 0 and loads in 12 ms/);
  t.match(r.actions[0]!.details, { upgradeAddsThreads: 0, upgradeLoadMs: 12, upgradeCapacity: 180 });

  const two = plan(snap([inst('a', b8t1, { arrivalRate: 105, queueLength: 3 }), inst('b', b8t1, { arrivalRate: 105, queueLength: 9 })], [b8t1, b32t1]));
  t.match(two.actions, [{ type: 'switch', reason: 'upgrade', instance: 'b', to: b32t1.id }]);

  // Of the upgrades that reach need, the one with the fewest threads wins over a bigger one.
  const both = plan(snap([inst('i1', b8t1, { arrivalRate: 130 })], [b8t1, b32t1, b32t2]));
  t.match(both.actions, [{ type: 'switch', to: b32t1.id }]);
});

t.test('replicates when the upgrade falls short of need and a replica adds more', async (t) => {
  // Batch 8 -> 32 of a CPU-bound model may add little: 110 q/s against 100 for a replica.
  const meagre = { ...b32t1, capacityQps: 110 };
  const r = plan(snap([inst('i1', b8t1, { arrivalRate: 150 })], [b8t1, meagre]));
  t.match(r.actions, [{ type: 'replicate', variant: b8t1.id }]);
  t.match(r.actions[0]!.why, /upgrade mlp\.fp32-all-b32-t1-cpu reaches 110 q\/s of 187\.5 needed, a replica adds more/);
  // Twice the capacity is worth a switch even short of need.
  const double = plan(snap([inst('i1', b8t1, { arrivalRate: 300 })], [b8t1, { ...b32t1, capacityQps: 200 }]));
  t.match(double.actions, [{ type: 'switch', reason: 'upgrade' }]);
});

t.test('upgrades even at a thread cost when no replica fits but the swap does', async (t) => {
  const cnn = variant('x', { id: 'cnn.fp32-all-b8-t2-cpu', model: 'cnn', threads: 2 });
  const full = snap([inst('i1', b8t1, { arrivalRate: 150 }), inst('x', cnn)], [b8t1, b8t2, cnn], { threads: 4 });
  // 3 of 4 threads and 20 MB reserved. b8t2 adds a thread, as a replica would, so a replica wins...
  t.match(plan(full).actions, [{ type: 'replicate' }]);
  // ...unless the replica's 10 MB do not fit in 5 MB free: b8t2 takes the same memory, so it can.
  const tight = plan({ ...full, memoryBytes: 25e6 });
  t.match(tight.actions, [{ type: 'switch', reason: 'upgrade', to: b8t2.id }]);
  t.match(tight.actions[0]!.why, /no replica fits/);
});

t.test('does not upgrade to a variant below the accuracy floor', async (t) => {
  const int8 = variant('int8-all-b8-t1-cpu', { precision: 'int8', accuracy: 0.96, capacityQps: 300 }); // 1 point worse
  const one = [inst('i1', b8t1, { arrivalRate: 150 })];
  t.match(plan(snap(one, [b8t1, int8])).actions, [{ type: 'replicate', variant: b8t1.id }]);
  t.match(plan(snap(one, [b8t1, int8], { threads: 1 })).actions, [{ type: 'mitigate', instance: 'i1' }]);
  const close = { ...int8, accuracy: 0.966 }; // within the half-point tolerance
  t.match(plan(snap(one, [b8t1, close])).actions, [{ type: 'switch', reason: 'upgrade', to: close.id }]);
});

t.test('mitigates when nothing fits; a draining instance with work still holds its core', async (t) => {
  const s = snap([
    inst('a', b8t1, { state: 'overloaded', arrivalRate: 60, queueLength: 12 }),
    inst('b', b8t1, { arrivalRate: 70, queueLength: 12 }),
    inst('old', b8t1, { state: 'draining', queueLength: 3 }),
    inst('gone', b8t2, { state: 'unloaded' }),
  ], [b8t1, b8t2], { threads: 3 });
  const r = plan(s);
  t.match(r.actions, [{ type: 'mitigate', instance: 'b', variant: b8t1.id, details: { threadsFree: 0, demand: 130, capacity: 200 } }]);
  t.match(r.actions[0]!.why, /an instance is overloaded at demand 130 q\/s, capacity 200 q\/s; neither a replica nor an upgrade fits in 0 free threads/);
  t.match(plan({ ...s, threads: 4 }).actions, [{ type: 'replicate' }], 'the unloaded instance reserves nothing');
  const idle = { ...s, instances: s.instances.map((i) => (i.id === 'old' ? { ...i, queueLength: 0 } : i)) };
  t.match(plan(idle).actions, [{ type: 'replicate' }], 'an idle instance holds memory, not a core');
  const foreign = { ...inst('f', variant('f', { id: 'f.v', model: 'f' }), { arrivalRate: 5 }), threads: 1 }; // its variant is not profiled here
  t.match(plan({ ...s, threads: 4, instances: [...s.instances, foreign] }).actions, [{ type: 'mitigate' }], 'an instance reserves what it reports');
});

t.test('waits while a replica is loading, and on a variant it cannot size', async (t) => {
  const prev: ScalingState = { groups: { [b8t1.id]: { lastActionAt: T0 - 60_000, lowSince: T0 - 60_000 } } };
  const r = plan(snap([inst('a', b8t1, { state: 'overloaded', arrivalRate: 300 }), inst('b', b8t1, { state: 'loading' })], [b8t1]), prev);
  t.same(r.actions, []);
  t.same(r.state.groups, { [b8t1.id]: { lastActionAt: T0 - 60_000 } }, 'cooldown kept, low streak restarted');
  t.same(plan(snap([inst('a', b8t1, { arrivalRate: 300 })], [])).actions, [], 'unknown variant');
  t.same(plan(snap([inst('a', b8t1, { arrivalRate: 300 })], [{ ...b8t1, capacityQps: 0 }])).actions, [], 'no profiled capacity');
});

t.test('respects the cooldown', async (t) => {
  const s = snap([inst('i1', b8t1, { arrivalRate: 150 })], [b8t1]);
  const recent = plan(s, { groups: { [b8t1.id]: { lastActionAt: T0 - 4_999 } } });
  t.same(recent.actions, []);
  t.same(recent.state.groups[b8t1.id], { lastActionAt: T0 - 4_999 });
  t.match(plan(s, { groups: { [b8t1.id]: { lastActionAt: T0 - defaultScalingSettings.cooldownMs } } }).actions, [{ type: 'replicate' }]);
});

t.test('interference switches to more threads, the same batch cap first, or mitigates', async (t) => {
  const s = snap([inst('a', b8t1, { arrivalRate: 40 }), inst('b', b8t1, { state: 'interfered', arrivalRate: 40 })], [b8t1, b8t2, b32t2, b32t1]);
  const r = plan(s);
  t.match(r.actions, [{ type: 'switch', reason: 'interference', instance: 'b', from: b8t1.id, to: b8t2.id, details: { fromThreads: 1, toThreads: 2 } }]);
  t.match(plan({ ...s, threads: 2 }).actions, [{ type: 'mitigate', instance: 'b' }], 'no core for a 2-thread variant');
  const hot = snap([inst('b', b8t1, { state: 'interfered', arrivalRate: 150 })], [b8t1, b8t2]);
  t.match(plan(hot).actions, [{ type: 'replicate' }], 'overload is handled first');
});

t.test('scales down only after scaleDownAfterMs of sustained low demand; lowSince resets if load returns', async (t) => {
  const at = (now: number, rate: number) => snap(['a', 'b', 'c'].map((id) => inst(id, b8t1, { arrivalRate: rate })), [b8t1], { now });
  let state = initialScalingState;
  const step = (now: number, rate: number) => {
    const r = plan(at(now, rate), state);
    state = r.state;
    return r.actions;
  };
  t.same(step(T0, 20), []); // 60 q/s <= 2 x 100 x 0.8 x 0.5 = 80
  t.same(state.groups[b8t1.id], { lowSince: T0 });
  t.same(step(T0 + 20_000, 20), []);
  t.same(step(T0 + 25_000, 50), []); // 150 q/s: not low
  t.same(state.groups, {});
  t.same(step(T0 + 30_000, 20), []);
  t.same(step(T0 + 59_999, 20), []);
  const acted = step(T0 + 60_000, 20);
  t.match(acted, [{ type: 'remove', variant: b8t1.id, details: { lowForMs: 30_000 } }]);
  t.same(state.groups[b8t1.id], { lastActionAt: T0 + 60_000 });
});

t.test('removes the shortest-queue replica', async (t) => {
  const prev: ScalingState = { groups: { [b8t1.id]: { lowSince: T0 - 30_000 } } };
  const r = plan(snap([inst('a', b8t1, { queueLength: 4 }), inst('b', b8t1, { queueLength: 1 }), inst('c', b8t1, { queueLength: 2 })], [b8t1]), prev);
  t.match(r.actions, [{ type: 'remove', instance: 'b' }]);
  t.match(r.actions[0]!.why, /demand 0 q\/s low for 30 s; 2 replicas serve it \(200 q\/s\)/);
});

t.test('downgrades a lone instance to the cheapest variant that serves it', async (t) => {
  const lossy = variant('int8-all-b8-t1-cpu', { precision: 'int8', accuracy: 0.9, memoryBytes: 5e6 });
  const prev: ScalingState = { groups: { [b8t2.id]: { lowSince: T0 - 30_000 } } };
  const r = plan(snap([inst('i1', b8t2, { arrivalRate: 30 })], [b8t2, b32t1, b8t1, lossy]), prev);
  // b8t1 and b32t1 both use 1 thread and serve 30 q/s; b8t1 needs less memory. lossy is too inaccurate.
  t.match(r.actions, [{ type: 'switch', reason: 'downgrade', instance: 'i1', from: b8t2.id, to: b8t1.id }]);
  t.same(plan(snap([inst('i1', b8t2, { arrivalRate: 45 })], [b8t2, b8t1]), prev).actions, [], '45 q/s > 100 x 0.8 x 0.5');
  const quiet = plan(snap([inst('i1', b8t2, { idleMs: 60_000 })], [b8t2, b8t1]), prev);
  t.same(quiet.actions, [], 'an idle instance is left for the unload rule');
  t.same(quiet.state.groups[b8t2.id], { lowSince: T0 - 30_000 });
});

t.test('unloads an idle lone instance, ahead of a downgrade', async (t) => {
  const prev: ScalingState = { groups: { [b8t2.id]: { lowSince: T0 - 200_000 } } };
  const r = plan(snap([inst('i1', b8t2, { idleMs: 120_000 })], [b8t2, b8t1]), prev);
  t.match(r.actions, [{ type: 'unload', instance: 'i1', variant: b8t2.id, details: { idleMs: 120_000 } }]);
  t.match(r.actions[0]!.why, /no arrivals for 120 s/);
  t.same(plan(snap([inst('i1', b8t1, { idleMs: 119_999 })], [b8t1])).actions, []);
  t.same(plan(snap([inst('a', b8t1, { idleMs: 500_000 }), inst('b', b8t1, { idleMs: 500_000 })], [b8t1])).actions, [], 'not with replicas');
});

t.test('an interfered verdict with no demand asks for no mitigation, round after round', async (t) => {
  // The verdict is a window old and nothing runs to refresh it: it once sent mitigation.requested every cooldown.
  let state = initialScalingState;
  for (let k = 0; k < 5; k++) {
    const r = plan(snap([inst('b', b8t1, { state: 'interfered', idleMs: 10_000 })], [b8t1], { threads: 1, now: T0 + k * 5_000 }), state);
    t.same(r.actions, [], `round ${k}`);
    state = r.state;
  }
  const busy = plan(snap([inst('b', b8t1, { state: 'interfered', arrivalRate: 5 })], [b8t1], { threads: 1 }));
  t.match(busy.actions, [{ type: 'mitigate', instance: 'b' }], 'with demand it still mitigates');
  const idle = plan(snap([inst('b', b8t1, { state: 'interfered', idleMs: 120_000 })], [b8t1]));
  t.match(idle.actions, [{ type: 'unload', instance: 'b' }], 'and an idle interfered instance is unloaded like any other');
});

t.test('a pinned idle instance is never unloaded', async (t) => {
  const s = snap([inst('i1', b8t1, { idleMs: 10 * 60_000, pinned: true })], [b8t1]);
  t.same(plan(s).actions, []);
  t.match(plan(snap([inst('i1', b8t1, { idleMs: 10 * 60_000 })], [b8t1])).actions, [{ type: 'unload', instance: 'i1' }], 'unpinned it is');
});

t.test('two groups cannot both take the last free thread; the more overloaded gets it', async (t) => {
  const cnn = variant('x', { id: 'cnn.fp32-all-b8-t1-cpu', model: 'cnn' });
  const instances = [inst('m', b8t1, { arrivalRate: 150 }), inst('c', cnn, { arrivalRate: 300 }), inst('z', variant('z', { id: 'z.v', model: 'z' }), { arrivalRate: 1 })];
  const r = plan(snap(instances, [b8t1, cnn, variant('z', { id: 'z.v', model: 'z' })], { threads: 4 }));
  t.same(r.actions.map((a) => [a.type, a.type === 'replicate' ? a.variant : a.type === 'mitigate' ? a.instance : '']), [['replicate', cnn.id], ['mitigate', 'm']]);
  t.same(plan(snap([...instances].reverse(), [b8t1, cnn, variant('z', { id: 'z.v', model: 'z' })])).actions.map((a) => a.type), ['replicate', 'mitigate'], 'snapshot order does not matter');
});

t.test('drops state of groups that are gone and does not mutate its inputs', async (t) => {
  const deepFreeze = <T>(x: T): T => {
    if (x && typeof x === 'object' && !(x instanceof Map)) Object.values(x).forEach(deepFreeze);
    return Object.freeze(x);
  };
  const s = snap([inst('a', b8t1, { arrivalRate: 140 }), inst('b', b8t2, { state: 'interfered', arrivalRate: 10 }), inst('c', b32t1, { queueLength: 2 }), inst('d', b32t1)], [b8t1, b8t2, b32t1], { threads: 8 });
  const prev: ScalingState = { groups: { [b32t1.id]: { lowSince: T0 - 40_000 }, 'mlp.gone': { lastActionAt: T0 - 1 } } };
  const before = structuredClone({ s, prev });
  const r = planWorkerScaling(deepFreeze(prev), deepFreeze(s));
  t.same({ s, prev }, before);
  t.same(r.actions.map((a) => [a.type, 'instance' in a ? a.instance : a.variant]), [['switch', 'a'], ['mitigate', 'b'], ['remove', 'd']]);
  t.same(Object.keys(r.state.groups).sort(), [b32t1.id, b8t1.id, b8t2.id].sort());
  t.not(r.state, prev);
});

t.test('a variant whose demand mostly names it (pinned queries) is replicated, never switched away', async (t) => {
  // Unpinned, the same load is an upgrade (see above); pinned, the upgrade would strand its queries.
  const pinned = plan(snap([inst('i1', b8t1, { arrivalRate: 130, pinnedShare: 0.9 })], [b8t1, b32t1]));
  t.match(pinned.actions, [{ type: 'replicate', variant: b8t1.id }]);
  const full = plan(snap([inst('i1', b8t1, { arrivalRate: 130, pinnedShare: 1 })], [b8t1, b32t1], { threads: 1 }));
  t.match(full.actions, [{ type: 'mitigate', variant: b8t1.id }], 'no room for a replica: mitigate, not switch');
  const some = plan(snap([inst('i1', b8t1, { arrivalRate: 130, pinnedShare: 0.2 })], [b8t1, b32t1]));
  t.match(some.actions, [{ type: 'switch', reason: 'upgrade' }], 'a minority of pinned queries does not stop an upgrade');
});

t.test('an Overloaded verdict left over after the load stopped (no arrivals) replicates nothing', async (t) => {
  const r = plan(snap([inst('i1', b8t1, { state: 'overloaded', arrivalRate: 0, queueLength: 50 })], [b8t1, b32t1]));
  t.same(r.actions, []);
  const busy = plan(snap([inst('i1', b8t1, { state: 'overloaded', arrivalRate: 60, queueLength: 50 })], [b8t1, b8t2]));
  t.match(busy.actions, [{ type: 'replicate' }], 'with arrivals it still scales');
});

t.test('replication only (switches off): overload replicates or mitigates, never switches a variant', async (t) => {
  const only = { ...defaultScalingSettings, switches: false };
  const planOnly = (s: WorkerScalingSnapshot, state: ScalingState = initialScalingState) => planWorkerScaling(state, s, only);
  // With switches b32t1 would be an upgrade (test above); replication only adds a replica.
  const up = planOnly(snap([inst('i1', b8t1, { arrivalRate: 130 })], [b8t1, b32t1]));
  t.match(up.actions, [{ type: 'replicate', variant: b8t1.id }]);
  t.match(up.actions[0]!.why, /replication only, replica adds 1 thread/);
  // No replica fits (1 thread budget): mitigate, even though the same-thread upgrade would fit.
  t.match(planOnly(snap([inst('i1', b8t1, { arrivalRate: 130 })], [b8t1, b32t1], { threads: 1 })).actions, [{ type: 'mitigate', instance: 'i1' }]);
  // Interference mitigates instead of switching to more threads.
  const hurt = planOnly(snap([inst('a', b8t1, { arrivalRate: 40 }), inst('b', b8t1, { state: 'interfered', arrivalRate: 40 })], [b8t1, b8t2]));
  t.match(hurt.actions, [{ type: 'mitigate', instance: 'b' }]);
  t.match(hurt.actions[0]!.why, /replication only/);
  // Low load on a lone instance with a cheaper variant: no downgrade, and no low-demand streak either.
  const prev: ScalingState = { groups: { [b8t2.id]: { lowSince: T0 - 30_000 } } };
  const low = planOnly(snap([inst('i1', b8t2, { arrivalRate: 30 })], [b8t2, b8t1]), prev);
  t.same(low.actions, []);
  t.same(low.state.groups, {});
  // Removing a replica is still allowed.
  const many = planOnly(snap([inst('a', b8t1), inst('b', b8t1, { queueLength: 1 })], [b8t1, b32t1]), { groups: { [b8t1.id]: { lowSince: T0 - 30_000 } } });
  t.match(many.actions, [{ type: 'remove', instance: 'a' }]);
  t.equal(defaultScalingSettings.switches, true, 'the model-less default switches');
});

t.test("the runner judges a variant's capacity at the input size its model's instances were sent", async (t) => {
  const { ScalingRunner } = await import('../actors/worker/scaling.js');
  const { silentLogger } = await import('../runtime/log.js');
  // A det-like variant profiled at 8x8 (4 rows in 12 ms) and 32x32 (4 rows in 200 ms).
  const v = { id: 'det.b4', model: 'det', precision: 'fp32', maxBatch: 4, intraOpThreads: 1, sizeBytes: 1e6 };
  const profile = {
    status: 'done', accuracy: 0.9, loadMs: 5, peakMemoryBytes: 2e6,
    latency: [{ batch: 1, p50Ms: 60 }, { batch: 4, p50Ms: 200 }],
    sizes: [{ elements: 192, latency: [{ batch: 1, p50Ms: 5 }, { batch: 4, p50Ms: 12 }] }, { elements: 3072, latency: [{ batch: 1, p50Ms: 60 }, { batch: 4, p50Ms: 200 }] }],
  };
  const { keys } = await import('../subjects/index.js');
  const view = { variants: new Map([[v.id, v]]), profiles: new Map([[keys.profile(v.id, 'cpu-test'), profile]]), models: new Map() };
  const runner = new ScalingRunner({
    settings: {} as never, threads: 2, memoryBytes: 1e9, hardwareClass: 'cpu-test', view: view as never, log: silentLogger,
    instances: () => [], startInstance: () => { throw new Error('unused'); }, replaced: () => {}, event: () => {},
  });
  const at = (served?: number) => runner.variantsFor(new Set(['det']), served === undefined ? [] : [{ spec: { model: 'det' }, servedElements: served, recentArrivalRate: 10 } as never]).get(v.id)!.capacityQps;
  const largest = at();
  t.ok(largest > 0 && largest < 21, `no traffic yet: the largest size, ${largest.toFixed(1)} rows/s`);
  t.ok(at(192) > 10 * largest, `8x8 traffic: ${at(192).toFixed(1)} rows/s`);
  t.ok(Math.abs(at(3072) - largest) < 1e-9, '32x32 traffic: the largest size');
});
