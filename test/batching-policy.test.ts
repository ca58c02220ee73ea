// The batching policy: work-conserving; a batch fills only behind a running one, and never past
// what the earliest query can afford.
import t from 'tap';
import { aimdInitial, aimdUpdate, decideBatch, defaultAimdSettings, latencyCurve, type AimdState, type BatchingInput } from '../actors/instance/batching.js';

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

// Clipper's AIMD batch cap (NSDI'17): additive growth while batches meet the objective, 10 % backoff when one does not.
const within = (cap: number) => ({ rows: cap, ms: 5, objectiveMs: 10 });

t.test('aimd: the cap starts at one row and grows by one after each full batch within the objective', async (t) => {
  t.same(defaultAimdSettings, { step: 1, backoff: 0.9 }, "Clipper's step and backoff");
  let s: AimdState = aimdInitial(32);
  t.same(s, { cap: 1, maxBatch: 32 });
  for (let i = 0; i < 5; i++) s = aimdUpdate(s, within(s.cap));
  t.equal(s.cap, 6);
  t.equal(aimdUpdate(s, { rows: 6, ms: 10, objectiveMs: 10 }).cap, 7, 'exactly at the objective is within it');
  t.equal(aimdUpdate(s, { rows: 3, ms: 1, objectiveMs: 10 }), s, 'a batch smaller than the cap says nothing about the cap');
  t.equal(aimdUpdate(s, within(6), { step: 4, backoff: 0.9 }).cap, 10, 'a larger step');
});

t.test('aimd: a batch over the objective shrinks the cap by 10 %, always by at least one row', async (t) => {
  const over = (rows: number) => ({ rows, ms: 12, objectiveMs: 10 });
  t.equal(aimdUpdate({ cap: 30, maxBatch: 32 }, over(30)).cap, 27);
  t.equal(aimdUpdate({ cap: 5, maxBatch: 32 }, over(5)).cap, 4, '4.5 floors to 4: a small cap still backs off');
  t.equal(aimdUpdate({ cap: 30, maxBatch: 32 }, over(10)).cap, 9, 'from the batch that overshot when it was smaller than the cap');
  t.equal(aimdUpdate({ cap: 20, maxBatch: 32 }, over(20), { step: 1, backoff: 0.5 }).cap, 10, 'another factor');
});

t.test('aimd: the cap stays within 1..maxBatch', async (t) => {
  let s: AimdState = aimdInitial(4);
  for (let i = 0; i < 10; i++) s = aimdUpdate(s, within(s.cap));
  t.equal(s.cap, 4, 'never past the max batch');
  for (let i = 0; i < 10; i++) s = aimdUpdate(s, { rows: s.cap, ms: 50, objectiveMs: 10 });
  t.equal(s.cap, 1, 'never below one row');
  t.equal(aimdUpdate(aimdInitial(1), within(1)).cap, 1, 'a variant of max batch 1 stays at 1');
  t.equal(aimdInitial(0).maxBatch, 1);
});
