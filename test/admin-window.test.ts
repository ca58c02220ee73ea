// The console's minute of per-model numbers, from hand-made instance records (no server).
import t from 'tap';
import { MinuteWindow, weightedPercentile } from '../actors/admin/window.js';
import type { InstanceRecord } from '../schemas/worker.js';

const T0 = 1_700_000_000_000;
const rec = (id: string, at: number, extra: Partial<InstanceRecord> = {}): InstanceRecord => ({
  id, worker: 'w1', variant: 'm.v', model: 'm', hardwareClass: 'cpu-test', state: 'active', threads: 1, maxBatch: 8, memoryBytes: 1,
  queueLength: 0, inFlight: 0, arrivalRate: 0, serviceRate: 0, deadlineMisses: 0, meanBatch: 0, latency: [], capacityQps: 100,
  createdAt: T0, updatedAt: at, ...extra,
});

t.test('counts answers and misses per model over the last minute', async (t) => {
  const w = new MinuteWindow(60_000, T0);
  // 250 ms windows: 40 q/s is 10 answers a window.
  for (let k = 1; k <= 8; k++) w.add('w1.i1', rec('i1', T0 + k * 250, { serviceRate: 40, windowMs: 250, deadlineMisses: k === 8 ? 2 : 0 }));
  w.add('w1.i1', rec('i1', T0 + 8 * 250, { serviceRate: 999, windowMs: 250 })); // the same record again: ignored
  // A record written at a state change carries no window and zero rates: it adds nothing.
  w.add('w1.i2', rec('i2', T0 + 1900));
  const s = w.summarize(T0 + 2000);
  t.equal(s.windowMs, 2000);
  t.same(s.models, [{ model: 'm', instances: 0, answered: 80, misses: 2, throughput: 40, goodput: 39, p99Ms: null }]);
  t.same(w.summarize(T0 + 62_000).models, [{ model: 'm', instances: 0, answered: 10, misses: 2, throughput: 10 / 60, goodput: 8 / 60, p99Ms: null }].map((m) => ({ ...m, throughput: Math.round(m.throughput * 1000) / 1000, goodput: Math.round(m.goodput * 1000) / 1000 })), 'older windows fall out');
  t.same(w.summarize(T0 + 200_000).models, []);
});

t.test('p99 is the run time below which 99 % of runs fall', async (t) => {
  t.equal(weightedPercentile([], 0.99), null);
  t.equal(weightedPercentile([{ ms: 1, runs: 99 }, { ms: 50, runs: 1 }], 0.99), 1);
  t.equal(weightedPercentile([{ ms: 1, runs: 98 }, { ms: 50, runs: 2 }], 0.99), 50);
  const w = new MinuteWindow(60_000, T0);
  w.add('w1.i1', rec('i1', T0 + 1000, { windowMs: 1000, serviceRate: 10, latency: [{ batch: 1, observedMs: 2, profiledMs: 2, runs: 10 }] }));
  t.equal(w.summarize(T0 + 1000).models[0]!.p99Ms, 2);
});
