// The batching policy: waits only while the earliest deadline can afford it and batching pays.
import t from 'tap';
import { decideBatch, latencyCurve, type BatchingInput } from '../actors/instance/batching.js';

// A conv-like curve: 1 ms alone, 4 ms for 32 (per query 8x cheaper at 32).
const curve = latencyCurve([{ batch: 1, p50Ms: 1 }, { batch: 8, p50Ms: 1.8 }, { batch: 32, p50Ms: 4 }]);
const base: BatchingInput = { now: 1000, deadlines: [1100], maxBatch: 32, latencyMs: curve, arrivalRate: 2000, maxWaitMs: 5, marginMs: 0.5 };

t.test('the latency curve interpolates and extrapolates', async (t) => {
  t.equal(curve(1), 1);
  t.equal(curve(20), 1.8 + (2.2 * 12) / 24);
  t.equal(curve(64), 8);
  t.equal(latencyCurve([])(4), 0);
});

t.test('empty queue idles; a full batch runs at once', async (t) => {
  t.same(decideBatch({ ...base, deadlines: [] }), { action: 'idle' });
  t.match(decideBatch({ ...base, deadlines: Array(32).fill(2000) }), { action: 'run', size: 32 });
});

t.test('with slack and arrivals it waits, bounded by the time to fill and maxWait', async (t) => {
  const d = decideBatch({ ...base, deadlines: [1100, 1100] });
  t.equal(d.action, 'wait');
  if (d.action === 'wait') t.equal(d.ms, 5, 'capped by maxWaitMs (fill would take 15 ms)');
  const fast = decideBatch({ ...base, deadlines: [1100, 1100], arrivalRate: 30_000 });
  if (fast.action === 'wait') t.ok(Math.abs(fast.ms - 1) < 1e-9, 'fills in ~1 ms at 30k/s');
  else t.fail('expected a wait');
});

t.test('never waits past what the earliest query can afford', async (t) => {
  // earliest deadline 1004.6: 4 ms for a full batch + 0.5 ms margin leaves 0.1 ms
  const d = decideBatch({ ...base, deadlines: [1010, 1004.6] });
  t.equal(d.action, 'wait');
  if (d.action === 'wait') t.ok(d.ms <= 0.1 + 1e-9, `waits ${d.ms} ms at most`);
  t.match(decideBatch({ ...base, deadlines: [1003] }), { action: 'run', size: 1, why: /deadline/ });
});

t.test('at light load it runs at once: waiting would only add latency', async (t) => {
  // 1 ms per query alone: 300 q/s is 30 % of what the instance serves unbatched.
  t.match(decideBatch({ ...base, deadlines: [1100, 1100], arrivalRate: 300 }), { action: 'run', size: 2, why: /light load \(30%/ });
  // The per-batch overhead counts: 0.02 ms queries with 0.25 ms of overhead per batch are busy at 2,000 q/s.
  const tiny = latencyCurve([{ batch: 1, p50Ms: 0.02 }, { batch: 32, p50Ms: 0.15 }]);
  t.equal(decideBatch({ ...base, latencyMs: tiny, deadlines: [1100, 1100], arrivalRate: 2000, overheadMs: 0.25 }).action, 'wait');
  t.match(decideBatch({ ...base, latencyMs: tiny, deadlines: [1100, 1100], arrivalRate: 2000 }), { action: 'run', why: /light load/ }, 'without overhead it looks idle');
});

t.test('does not wait when bigger batches are no cheaper per query (e.g. a flat int8 curve)', async (t) => {
  const linear = latencyCurve([{ batch: 1, p50Ms: 0.5 }, { batch: 32, p50Ms: 16 }]);
  t.match(decideBatch({ ...base, latencyMs: linear, deadlines: [2000] }), { action: 'run', size: 1, why: /not cheaper/ });
  t.match(decideBatch({ ...base, arrivalRate: 0 }), { action: 'run', why: /no arrivals/ });
});
