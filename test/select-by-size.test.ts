// Selection predicts a query's latency at its own input size: of two variants whose curves cross
// (A faster on small inputs, B on large ones), the choice follows the query's elements; the scan,
// the index and the baselines agree; a query without elements, or profiles without sizes, choose
// as before sizes existed.
import t, { type Test as Tap } from 'tap';
import {
  fastestVariant, latencyFor, selectVariant, selectVariantScan,
  type CandidateProfile, type InstanceView, type SelectionRequest, type Snapshot, type WorkerView,
} from '../actors/dispatcher/index.js';
import { expectedCompletionMs } from '../actors/dispatcher/selection-model.js';
import { candidateProfiles } from '../actors/dispatcher/snapshot.js';
import type { ModelRecord, ProfileRecord, VariantRecord } from '../schemas/registry.js';

const SMALL = 3 * 256 * 256;
const LARGE = 3 * 640 * 640;
const curve = (b1: number) => [{ batch: 1, p50Ms: b1 }, { batch: 4, p50Ms: b1 * 3 }];
const det = (name: string, small: number, large: number, extra: Partial<CandidateProfile> = {}): CandidateProfile => ({
  variantId: `${name}.fp32`, model: name, task: 'text-detection', hardwareClass: 'cpu', accuracy: 0.9, maxBatch: 4, threads: 1,
  loadMs: 5, peakMemoryBytes: 1e6, latency: curve(large),
  sizes: [{ elements: SMALL, latency: curve(small) }, { elements: LARGE, latency: curve(large) }], ...extra,
});
// A: a light network, fast at 256x256 but 120 ms at 640x640; B: heavier at small sizes, better at large.
const A = det('a', 10, 120);
const B = det('b', 30, 60);
const worker = (id: string): WorkerView => ({ id, hardwareClass: 'cpu', pricePerThreadHour: 0.1, freeThreads: 4, freeMemoryBytes: 1e9 });
const snap = (instances: InstanceView[] = [], profiles = [A, B]): Snapshot => ({ profiles, workers: new Map([['w1', worker('w1')], ['w2', worker('w2')]]), instances });
const req: SelectionRequest = { task: 'text-detection', batch: 1, latencyMs: 100, minAccuracy: 0.5 };

const both = (t: Tap, s: Snapshot, r: SelectionRequest) => {
  const scan = selectVariantScan(s, r);
  t.strictSame(selectVariant(s, r), scan, `index and scan agree on ${JSON.stringify(r)}`);
  return scan;
};

t.test('the latency at a query size is read between the profiled sizes', async (t) => {
  t.equal(latencyFor(A, 1, SMALL), 10);
  t.equal(latencyFor(A, 1, LARGE), 120);
  t.equal(latencyFor(A, 2, (SMALL + LARGE) / 2), (30 + 360) / 2, 'batch 2 is held by the profiled batch 4, blended in elements');
  t.equal(latencyFor(A, 1, 2 * LARGE), 240, 'above the largest size: in proportion to elements');
  t.equal(latencyFor(A, 1), 120, 'no size given: the reference curve (the largest size)');
  t.equal(latencyFor(A, 8, SMALL), undefined, 'beyond the max batch at any size');
  t.equal(expectedCompletionMs(A, 0, 1, SMALL), 10);
  t.equal(expectedCompletionMs(A, 4, 1, SMALL), 360 + 10, 'the work ahead at the reference curve, the query at its size');
  t.equal(expectedCompletionMs(A, 4, 1), 360 + 120);
});

t.test('nothing running: the load follows the query size (cheaper where faster)', async (t) => {
  t.match(both(t, snap(), { ...req, elements: SMALL }), { kind: 'load', variantId: A.variantId, expectedMs: 5 + 10 });
  t.match(both(t, snap(), { ...req, elements: LARGE }), { kind: 'load', variantId: B.variantId, expectedMs: 5 + 60 }, 'A would take 120 ms: infeasible at 100');
  t.match(both(t, snap(), req), { kind: 'load', variantId: B.variantId }, 'no size given: judged at the largest size, as before');
  // Between the sizes the curves cross where 10 + 110 f = 30 + 30 f, f = 1/4: below it A is cheaper, above it B.
  const at = (f: number) => Math.round(SMALL + f * (LARGE - SMALL));
  t.match(both(t, snap(), { ...req, elements: at(0.2) }), { kind: 'load', variantId: A.variantId });
  t.match(both(t, snap(), { ...req, elements: at(0.3) }), { kind: 'load', variantId: B.variantId });
});

t.test('both running and idle: the instance expected to finish first at the query size', async (t) => {
  const insts: InstanceView[] = [
    { variantId: A.variantId, workerId: 'w1', state: 'active', outstanding: 0 },
    { variantId: B.variantId, workerId: 'w2', state: 'active', outstanding: 0 },
  ];
  t.match(both(t, snap(insts), { ...req, elements: SMALL }), { kind: 'running', variantId: A.variantId, expectedMs: 10 });
  t.match(both(t, snap(insts), { ...req, elements: LARGE }), { kind: 'running', variantId: B.variantId, expectedMs: 60 });
  t.match(both(t, snap(insts), { ...req, latencyMs: 20, elements: LARGE }), { kind: 'infeasible' }, 'nothing makes 20 ms at 640x640');
  t.match(both(t, snap(insts), { ...req, latencyMs: 20, elements: LARGE }), { achievable: { lowestLatencyMs: 60 } });
});

t.test('the baselines read the same size-aware latency', async (t) => {
  t.match(fastestVariant(snap(), { ...req, elements: SMALL }), { variantId: A.variantId });
  t.match(fastestVariant(snap(), { ...req, elements: LARGE }), { variantId: B.variantId });
});

t.test('profiles without sizes choose exactly as before, with or without elements', async (t) => {
  const plain = [A, B].map(({ sizes: _sizes, ...p }) => p);
  for (const elements of [undefined, SMALL, LARGE]) {
    const r = { ...req, ...(elements !== undefined ? { elements } : {}) };
    t.strictSame(both(t, snap([], plain), r), both(t, snap([], plain), req));
    t.match(both(t, snap([], plain), r), { kind: 'load', variantId: B.variantId });
  }
});

t.test('the index remembers feasibility per query size: the same snapshot answers both sizes right, repeatedly', async (t) => {
  const s = snap();
  for (let i = 0; i < 3; i++) {
    t.match(selectVariant(s, { ...req, elements: SMALL }), { variantId: A.variantId });
    t.match(selectVariant(s, { ...req, elements: LARGE }), { variantId: B.variantId });
  }
});

t.test('candidateProfiles carries a profile sizes, each curve cut at the max batch', async (t) => {
  const model = { name: 'a', task: 'text-detection', status: 'registered' } as ModelRecord;
  const variant = { id: 'a.fp32', model: 'a', precision: 'fp32', maxBatch: 2, intraOpThreads: 1, sizeBytes: 10 } as VariantRecord;
  const point = (batch: number, p50Ms: number) => ({ batch, p50Ms, p99Ms: p50Ms, meanMs: p50Ms, runs: 5 });
  const record = {
    variant: 'a.fp32', model: 'a', hardwareClass: 'cpu', status: 'done', worker: 'w', loadMs: 3, startedAt: 0, latency: [point(1, 120), point(4, 360)],
    sizes: [
      { shape: { x: [1, 3, 640, 640] }, elements: LARGE, latency: [point(4, 360), point(1, 120)] },
      { shape: { x: [1, 3, 256, 256] }, elements: SMALL, latency: [point(1, 10), point(4, 30)] },
    ],
  } as ProfileRecord;
  const [p] = candidateProfiles(new Map([['a', model]]), new Map([['a.fp32', variant]]), [record]);
  t.strictSame(p.sizes, [{ elements: SMALL, latency: [{ batch: 1, p50Ms: 10 }] }, { elements: LARGE, latency: [{ batch: 1, p50Ms: 120 }] }]);
  const [q] = candidateProfiles(new Map([['a', model]]), new Map([['a.fp32', variant]]), [{ ...record, sizes: undefined }]);
  t.notOk('sizes' in q, 'no sizes recorded: none in the candidate');
});

t.test('on random snapshots with sizes, the index and the scan choose alike at any query size', async (t) => {
  let seed = 20261202;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const kinds = new Set<string>();
  for (let n = 0; n < 15; n++) {
    const profiles = Array.from({ length: 10 }, (_, i) => {
      const small = pick([2, 10, 30]);
      const large = small * pick([1, 3, 12]);
      return det(`m${i % 4}v${i}`, small, large, { model: `m${i % 4}`, accuracy: pick([0.8, 0.9]), loadMs: pick([5, 300]), ...(random() < 0.3 ? { sizes: undefined } : {}) });
    });
    const insts: InstanceView[] = Array.from({ length: 4 }, () => ({
      variantId: pick(profiles).variantId, workerId: pick(['w1', 'w2']), state: pick(['active', 'overloaded', 'loading'] as const), outstanding: pick([0, 2, 9]),
    }));
    const s = snap(insts, profiles);
    for (let i = 0; i < 40; i++) {
      const r: SelectionRequest = {
        ...(random() < 0.7 ? { task: 'text-detection' } : { model: `m${Math.floor(random() * 4)}` }), batch: pick([1, 2, 4]),
        latencyMs: pick([15, 40, 100, 400]), minAccuracy: pick([0, 0.85]), ...(random() < 0.8 ? { elements: pick([1000, SMALL, 400_000, LARGE, 2 * LARGE]) } : {}),
      };
      kinds.add(both(t, s, r).kind);
    }
  }
  t.same([...kinds].sort(), ['busy', 'infeasible', 'load', 'running'], 'every kind of answer is reached');
});
