// The batching policy: work-conserving; a batch fills only behind a running one, and never past
// what the earliest query can afford.
import t from 'tap';
import { decideBatch, latencyCurve, type BatchingInput } from '../actors/instance/batching.js';

// A conv-like curve: 1 ms alone, 4 ms for 32 (per query 8x cheaper at 32).
const curve = latencyCurve([{ batch: 1, p50Ms: 1 }, { batch: 8, p50Ms: 1.8 }, { batch: 32, p50Ms: 4 }]);
const base: BatchingInput = { now: 1000, queued: 1, earliestDeadline: 1100, maxBatch: 32, latencyMs: curve };

t.test('the latency curve interpolates and extrapolates', async (t) => {
  t.equal(curve(1), 1);
  t.equal(curve(20), 1.8 + (2.2 * 12) / 24);
  t.equal(curve(64), 8);
  t.equal(latencyCurve([])(4), 0);
});

t.test('empty queue idles; a full batch runs at once, counted in rows', async (t) => {
  t.same(decideBatch({ ...base, queued: 0 }), { action: 'idle' });
  t.match(decideBatch({ ...base, queued: 32, running: 1 }), { action: 'run', size: 32 });
  t.match(decideBatch({ ...base, queued: 4, rows: 32, running: 1 }), { action: 'run', size: 32, why: /full/ }, '4 queries of 8 rows fill a batch of 32');
});

t.test('an idle session runs what is queued at once, however few: a closed loop of clients never fills a batch', async (t) => {
  t.match(decideBatch({ ...base, queued: 2 }), { action: 'run', size: 2, why: /idle/ });
  t.match(decideBatch({ ...base, queued: 3, rows: 12 }), { action: 'run', size: 12 });
});

t.test('behind a running batch a partial batch waits for it, at most until its earliest query would expire', async (t) => {
  const d = decideBatch({ ...base, queued: 2, running: 1, overheadMs: 0.5 });
  t.equal(d.action, 'wait');
  // 100 ms to the earliest deadline, less one row's latency (1 ms) and the per-run overhead.
  if (d.action === 'wait') t.equal(d.ms, 98.5);
  t.match(decideBatch({ ...base, queued: 2, running: 1, earliestDeadline: 990 }), { action: 'wait', ms: 0 }, 'already due: the host expires it now');
});
