// Where new capacity goes (pure policy, shared by the dispatcher and the trace simulator): a warm-up
// load when every instance is busy, the hardware class that unplaced demand asks the VM-autoscaler
// for, and a fixed-variant baseline pinned to one class.
import t from 'tap';
import {
  unplacedClasses, warmUpCheaper, warmUpWhenBusy, selectVariant,
  type CandidateProfile, type InstanceView, type Snapshot, type WorkerView,
} from '../actors/dispatcher/select-variant.js';
import { fixedVariant } from '../actors/dispatcher/baselines.js';

const profile = (cls: string, accuracy: number, b1: number, extra: Partial<CandidateProfile> = {}): CandidateProfile => ({
  variantId: 'm.v', model: 'm', task: 'digits', hardwareClass: cls, accuracy, maxBatch: 8, threads: 1,
  loadMs: 300, peakMemoryBytes: 1e6, latency: [{ batch: 1, p50Ms: b1 }, { batch: 8, p50Ms: b1 * 4 }], ...extra,
});
const worker = (id: string, cls = 'cpu', extra: Partial<WorkerView> = {}): WorkerView => ({ id, hardwareClass: cls, pricePerThreadHour: 0.05, freeThreads: 1, freeMemoryBytes: 1e9, ...extra });
const snap = (profiles: CandidateProfile[], workers: WorkerView[], instances: InstanceView[] = []): Snapshot =>
  ({ profiles, workers: new Map(workers.map((w) => [w.id, w])), instances });
const req = { task: 'digits', batch: 1, latencyMs: 10, minAccuracy: 0.9 };

t.test('busy instances: a warm-up load on a worker without one, load time aside; one at a time per variant', async (t) => {
  const busy: InstanceView = { variantId: 'm.v', workerId: 'w1', state: 'active', outstanding: 100 };
  const s = snap([profile('cpu', 0.95, 2)], [worker('w1', 'cpu', { freeThreads: 0 }), worker('w2')], [busy]);
  t.match(selectVariant(s, req), { kind: 'busy' }, 'the policy alone says busy: the load does not fit 10 ms');
  t.match(warmUpWhenBusy(selectVariant, s, req), { kind: 'load', variantId: 'm.v', workerId: 'w2' });
  const loading = snap(s.profiles, [...s.workers.values()], [busy, { variantId: 'm.v', workerId: 'w2', state: 'loading', outstanding: 0 }]);
  t.equal(warmUpWhenBusy(selectVariant, loading, req), undefined, 'already loading one');
  const full = snap(s.profiles, [worker('w1', 'cpu', { freeThreads: 0 })], [busy]);
  t.equal(warmUpWhenBusy(selectVariant, full, req), undefined, 'no other worker');
});

t.test('unplaced demand asks for the cheapest class that meets the request, not every class', async (t) => {
  const cpu = profile('cpu', 0.95, 2, { threads: 2 });
  const gpu = profile('gpu', 0.95, 0.5);
  const s = snap([cpu, gpu], []);
  const prices = new Map([['cpu', 0.048], ['gpu', 0.765]]);
  // cpu: 0.048 x 2 threads x 2 ms; gpu: 0.765 x 1 x 0.5 ms: cpu is cheaper.
  t.same(unplacedClasses(s, req, prices), ['cpu']);
  t.same(unplacedClasses(s, { ...req, latencyMs: 1 }, prices), ['gpu'], 'only the gpu meets 1 ms');
  t.same(unplacedClasses(s, { ...req, minAccuracy: 0.99 }, prices).sort(), ['cpu', 'gpu'], 'nothing feasible: every matching class, as before');
  t.same(unplacedClasses(s, req).sort(), ['cpu', 'gpu'], 'no prices known: every feasible class');
  t.same(unplacedClasses(snap([cpu, gpu], [worker('g1', 'gpu', { pricePerThreadHour: 0.7 })]), req), ['gpu'], 'a live worker prices its class');
});

t.test('a fixed variant pinned to a class never runs on another', async (t) => {
  const s = snap([profile('cpu', 0.95, 2), profile('gpu', 0.95, 0.5)], [worker('c1'), worker('g1', 'gpu')]);
  t.match(fixedVariant(undefined, 'cpu')(s, { ...req, ignoreLoadTime: true }), { kind: 'load', workerId: 'c1' });
  t.match(fixedVariant(undefined, 'gpu')(s, { ...req, ignoreLoadTime: true }), { kind: 'load', workerId: 'g1' });
});

t.test('a running choice twice as dear as a feasible alternative warms the cheaper one up, once', async (t) => {
  const dear = profile('cpu', 0.95, 2, { variantId: 'm.dear', threads: 2 });
  const cheap = profile('cpu', 0.95, 0.5, { variantId: 'm.cheap' });
  const running: InstanceView = { variantId: 'm.dear', workerId: 'w1', state: 'active', outstanding: 0 };
  const s = snap([dear, cheap], [worker('w1', 'cpu', { freeThreads: 0 })], [running]);
  const sel = selectVariant(s, req);
  t.match(sel, { kind: 'running', variantId: 'm.dear' }, 'the running instance wins this query (the load does not fit 10 ms)');
  if (sel.kind !== 'running') return;
  t.match(warmUpCheaper(selectVariant, s, req, sel), { kind: 'load', variantId: 'm.cheap', workerId: 'w1' });
  const loading = snap(s.profiles, [...s.workers.values()], [running, { variantId: 'm.cheap', workerId: 'w1', state: 'loading', outstanding: 0 }]);
  t.equal(warmUpCheaper(selectVariant, loading, req, sel), undefined, 'already loading');
  const close = snap([dear, profile('cpu', 0.95, 1.5, { variantId: 'm.close', threads: 2 })], [worker('w1', 'cpu', { freeThreads: 0 })], [running]);
  const sel2 = selectVariant(close, req);
  if (sel2.kind === 'running') t.equal(warmUpCheaper(selectVariant, close, req, sel2), undefined, 'not twice as cheap: left alone');
  t.equal(warmUpCheaper(fixedVariant({ m: 'm.dear' }), s, req, sel), undefined, 'a fixed-variant baseline has no other variant to warm');
});
