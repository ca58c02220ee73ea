// The selection policy on hand-made snapshots: prefer healthy running instances, else load the
// cheapest feasible variant, else explain what is achievable; the indexed policy and the full scan
// choose alike on random snapshots.
import t from 'tap';
import {
  costPerQuery, indexSnapshot, selectVariant, selectVariantScan,
  type CandidateProfile, type InstanceView, type SelectionRequest, type Snapshot, type WorkerView,
} from '../actors/dispatcher/select-variant.js';

const profile = (model: string, accuracy: number, b1: number, extra: Partial<CandidateProfile> = {}): CandidateProfile => ({
  variantId: `${model}.fp32-all-b8-t1-cpu`, model, task: 'digits', hardwareClass: 'cpu', accuracy, maxBatch: 8, threads: 1,
  loadMs: 2, peakMemoryBytes: 1e6, latency: [{ batch: 1, p50Ms: b1 }, { batch: 8, p50Ms: b1 * 3 }], ...extra,
});
const small = profile('small', 0.9, 0.03);
const mid = profile('mid', 0.94, 0.06);
const big = profile('big', 0.96, 1.0);
const worker = (id: string, price: number, extra: Partial<WorkerView> = {}): WorkerView => ({ id, hardwareClass: 'cpu', pricePerThreadHour: price, freeThreads: 2, freeMemoryBytes: 1e9, ...extra });

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

t.test('overloaded and interfered instances rank below active ones, but are not excluded', async (t) => {
  const insts: InstanceView[] = [
    { variantId: mid.variantId, workerId: 'w1', state: 'overloaded', outstanding: 0 },
    { variantId: big.variantId, workerId: 'w2', state: 'interfered', outstanding: 0 },
  ];
  t.match(selectVariant(snap(insts), req), { kind: 'running', variantId: mid.variantId, workerId: 'w1' }, 'the one expected to finish first');
  const withActive = [...insts, { variantId: big.variantId, workerId: 'w1', state: 'active' as const, outstanding: 9 }];
  t.match(selectVariant(snap(withActive), req), { kind: 'running', variantId: big.variantId, workerId: 'w1' }, 'an active instance first, even a slower one, while it finishes in time');
  const tooBusy = [...insts, { variantId: big.variantId, workerId: 'w1', state: 'active' as const, outstanding: 40 }];
  t.match(selectVariant(snap(tooBusy), req), { kind: 'running', variantId: mid.variantId }, 'not one that would finish too late');
  t.match(selectVariant(snap([{ ...insts[0], state: 'draining' }]), req), { kind: 'load', variantId: small.variantId }, 'a draining one takes nothing');
});

t.test('cores are shared: a worker with no free thread still loads where memory allows', async (t) => {
  t.match(selectVariant(snap([], [worker('w1', 0.1, { freeThreads: 0 })]), req), { kind: 'load', variantId: small.variantId, workerId: 'w1' });
});

t.test('every instance too busy: busy with retry advice, a load only on a worker without one, queues drain at the profiled rate', async (t) => {
  const busy: InstanceView[] = [{ variantId: small.variantId, workerId: 'w1', state: 'active', outstanding: 800, reportedAt: 1000 }];
  // 800 rows at 8 per 0.09 ms batch: 9 ms ahead, and 0.03 ms for this one; the objective is 5 ms.
  const r = selectVariant(snap(busy), { ...req, latencyMs: 5, now: 1000 });
  t.match(r, { kind: 'load', workerId: 'w2' }, 'another worker hosts none: load there');
  const one = snap(busy, [worker('w1', 0.1)]);
  const b = selectVariant(one, { ...req, latencyMs: 5, now: 1000 });
  t.match(b, { kind: 'busy', variantId: small.variantId, workerId: 'w1' }, 'no replica storm on the same cores');
  if (b.kind === 'busy') t.ok(Math.abs(b.retryAfterMs - (9 + 0.03 - 5)) < 1e-9, `retry after ${b.retryAfterMs} ms`);
  t.match(selectVariant(one, { ...req, latencyMs: 5, now: 1005 }), { kind: 'running', workerId: 'w1' }, '5 ms later the queue has drained enough');
  t.same(selectVariantScan(one, { ...req, latencyMs: 5, now: 1000 }), b);
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
  t.match(selectVariant(snap(), { ...req, model: 'small', minAccuracy: 0 }), { kind: 'load', variantId: small.variantId });
  t.match(selectVariant(snap(), { ...req, model: 'small', minAccuracy: 0.99 }), { kind: 'infeasible', reason: 'no variant meets both the accuracy floor and the latency objective' },
    'a model query honours the floor it states (its variants are measured apart: an int8 may be less accurate)');
  t.match(selectVariant(snap(), { ...req, variant: big.variantId }), { kind: 'load', variantId: big.variantId });
  t.match(selectVariant(snap(), { ...req, batch: 16 }), { kind: 'infeasible' });
  t.match(selectVariant(snap(), { ...req, maxCostPerQuery: 1e-12 }), { kind: 'infeasible' });
});

/** Seeded uniform [0,1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Small value sets on purpose: equal prices, latencies and loads make the tie-breaks matter. */
function randomSnapshot(random: () => number): Snapshot {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const classes = ['cpu', 'big', 'gpu'];
  const profiles: CandidateProfile[] = [];
  for (let m = 0; m < 8; m++) {
    const task = `task${m % 3}`;
    for (let v = 0; v < 6; v++) {
      const maxBatch = pick([1, 4, 8]);
      const b1 = pick([0.5, 1, 2, 5]);
      for (const hardwareClass of classes.filter(() => random() < 0.7)) {
        profiles.push({
          variantId: `m${m}.v${v}`, model: `m${m}`, task, hardwareClass, accuracy: pick([0.8, 0.85, 0.9, 0.95]), maxBatch,
          threads: pick([1, 2]), loadMs: pick([5, 50, 300]), peakMemoryBytes: pick([1e6, 1e8, 1e9]),
          latency: [1, 2, 4, 8].filter((b) => b <= maxBatch).map((batch) => ({ batch, p50Ms: b1 * batch })),
        });
      }
    }
  }
  // A duplicated variant@class profile now and then: the scan keeps the last feasible one.
  for (let i = 0; i < 3; i++) profiles.push({ ...pick(profiles), accuracy: pick([0.8, 0.95]), latency: [{ batch: 1, p50Ms: pick([0.5, 3]) }], maxBatch: 1 });
  const workers = new Map<string, WorkerView>();
  for (let i = 0; i < 12; i++) {
    workers.set(`w${i}`, { id: `w${i}`, hardwareClass: pick(classes), pricePerThreadHour: pick([0.1, 0.2, 0.2, 0.5]), freeThreads: pick([0, 1, 2, 4]), freeMemoryBytes: pick([0, 5e8, 4e9]) });
  }
  const ids = [...new Set(profiles.map((p) => p.variantId))];
  const instances: InstanceView[] = Array.from({ length: 15 }, () => ({
    variantId: random() < 0.9 ? pick(ids) : 'gone.v0', workerId: random() < 0.95 ? `w${Math.floor(random() * 12)}` : 'w-gone',
    state: pick(['active', 'active', 'active', 'overloaded', 'interfered', 'loading', 'draining'] as const), outstanding: pick([0, 0, 1, 3]),
  }));
  return { profiles, workers, instances };
}

function randomRequest(random: () => number, s: Snapshot): SelectionRequest {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const slo = {
    batch: pick([1, 1, 2, 4, 8, 16]), latencyMs: pick([0.4, 1, 3, 10, 60, 400, 5000, Infinity]), minAccuracy: pick([0, 0.82, 0.9, 0.99]),
    ...(random() < 0.2 ? { maxCostPerQuery: pick([1e-10, 1e-9, 1e-7]) } : {}),
  };
  const u = random();
  if (u < 0.6) return { task: pick(['task0', 'task1', 'task2', 'task9']), ...slo };
  if (u < 0.8) return { model: pick([...s.profiles.map((p) => p.model), 'nope']), ...slo };
  return { variant: pick([...s.profiles.map((p) => p.variantId), 'nope.v0']), ...slo };
}

t.test('the indexed policy chooses exactly as the full scan, ties included', async (t) => {
  const random = rng(20260404);
  let decided = 0;
  const kinds = new Set<string>();
  for (let n = 0; n < 20; n++) {
    const s = randomSnapshot(random);
    for (let i = 0; i < 30; i++) {
      const r = randomRequest(random, s);
      const scan = selectVariantScan(s, r);
      t.strictSame(selectVariant(s, r), scan, `snapshot ${n}, request ${JSON.stringify(r)}`);
      kinds.add(scan.kind);
      decided++;
    }
  }
  t.equal(decided, 600);
  t.same([...kinds].sort(), ['busy', 'infeasible', 'load', 'running'], 'the random requests reach every kind of answer');
});

t.test('with two profiles for one variant on one class, the last feasible one prices a running instance', async (t) => {
  const later = { ...mid, latency: [{ batch: 1, p50Ms: 0.5 }] };
  const s: Snapshot = { ...snap([{ variantId: mid.variantId, workerId: 'w1', state: 'active', outstanding: 0 }]), profiles: [small, mid, later] };
  const expected = { kind: 'running', variantId: mid.variantId, workerId: 'w1', expectedMs: 0.5, costPerQuery: costPerQuery(0.1, 0.5, 1) };
  t.strictSame(selectVariantScan(s, req), expected);
  t.strictSame(selectVariant(s, req), expected);
});

t.test('the index is built once per snapshot, reads outstanding work live and notices a resized instance list', async (t) => {
  const insts: InstanceView[] = [
    { variantId: mid.variantId, workerId: 'w1', state: 'active', outstanding: 0 },
    { variantId: mid.variantId, workerId: 'w2', state: 'active', outstanding: 1 },
  ];
  const s = snap(insts);
  t.equal(indexSnapshot(s), indexSnapshot(s), 'cached');
  t.match(selectVariant(s, req), { kind: 'running', workerId: 'w1' });
  insts[0].outstanding = 5; // what the dispatcher does to its cached snapshot after sending a query
  t.match(selectVariant(s, req), { kind: 'running', workerId: 'w2' });
  insts.push({ variantId: small.variantId, workerId: 'w1', state: 'active', outstanding: 0 });
  t.match(selectVariant(s, req), { kind: 'running', variantId: small.variantId, workerId: 'w1' });
});

t.test('a batch beyond every cap is never feasible, even with no bound on latency', async (t) => {
  const r = selectVariant(snap(), { ...req, batch: 9, latencyMs: Infinity });
  t.match(r, { kind: 'infeasible', reason: 'no variant meets both the accuracy floor and the latency objective' });
  t.same(selectVariantScan(snap(), { ...req, batch: 9, latencyMs: Infinity }), r);
});

t.test('cost counts the threads a variant holds: a two-thread variant costs twice per millisecond', async (t) => {
  const t2 = profile('small', 0.9, 0.025, { variantId: 'small.fp32-all-b8-t2-cpu', threads: 2 });
  const t1 = profile('small', 0.9, 0.03);
  const r = selectVariant({ profiles: [t2, t1], workers: new Map([['w1', worker('w1', 0.1)]]), instances: [] }, { ...req, model: 'small', task: undefined });
  t.match(r, { kind: 'load', variantId: t1.variantId }, '0.03 ms x 1 thread beats 0.025 ms x 2 threads');
});

t.test('ignoreLoadTime picks what to warm up when only the load time breaks the objective', async (t) => {
  const slow = { ...req, latencyMs: 1 }; // every profile loads in 2 ms
  t.match(selectVariant(snap(), slow), { kind: 'infeasible', reason: 'no worker can run a feasible variant in time' });
  const warm = selectVariant(snap(), { ...slow, ignoreLoadTime: true });
  t.match(warm, { kind: 'load', variantId: 'small.fp32-all-b8-t1-cpu', workerId: 'w1' });
  t.same(selectVariantScan(snap(), { ...slow, ignoreLoadTime: true }), warm);
});

t.test('a loading instance takes queries whose objective allows its load time, before a second load', async (t) => {
  const loading: InstanceView[] = [{ variantId: small.variantId, workerId: 'w2', state: 'loading', outstanding: 3 }];
  t.match(selectVariant(snap(loading), req), { kind: 'running', variantId: small.variantId, workerId: 'w2', expectedMs: 2.03 });
  t.match(selectVariant(snap(loading), { ...req, latencyMs: 1 }), { kind: 'busy', retryAfterMs: 2.03 - 1, loading: true }, 'not when the load does not fit: busy, retry when loaded');
  const active: InstanceView[] = [...loading, { variantId: mid.variantId, workerId: 'w1', state: 'active', outstanding: 9 }];
  t.match(selectVariant(snap(active), req), { kind: 'running', variantId: mid.variantId }, 'an active instance first');
  t.same(selectVariantScan(snap(active), req), selectVariant(snap(active), req));
});
