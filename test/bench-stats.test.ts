// The arithmetic of `infaas bench` on hand-made outcomes: windows, percentiles, goodput,
// violations, accuracy delivered and promised, cost; and the seeded Poisson arrivals.
import t from 'tap';
import { percentile, poissonArrivals, summarise, windowSpans, windowStats, type BenchOutcome } from '../bench/live/stats.js';

const answer = (seq: number, sentAt: number, ms: number, extra: Partial<BenchOutcome> = {}): BenchOutcome =>
  ({ seq, sentAt, doneAt: sentAt + ms, ok: true, variant: 'm.a', correct: true, promisedAccuracy: 0.9, cost: 1e-6, ...extra });
const error = (seq: number, sentAt: number, code: string): BenchOutcome => ({ seq, sentAt, doneAt: sentAt + 5, ok: false, code });

t.test('percentiles are nearest rank and null without data', async (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  t.equal(percentile(xs, 0.5), 50);
  t.equal(percentile(xs, 0.9), 90);
  t.equal(percentile(xs, 0.99), 99);
  t.equal(percentile(xs, 1), 100);
  t.equal(percentile([7], 0.5), 7);
  t.equal(percentile([1, 2, 3], 0.5), 2);
  t.equal(percentile([], 0.5), null);
});

t.test('windows split warmup from measurement and cover the run', async (t) => {
  t.same(windowSpans(2, 3, 1).map((s) => [s.fromS, s.toS, s.warmup]), [[0, 1, true], [1, 2, true], [2, 3, false], [3, 4, false], [4, 5, false]]);
  t.same(windowSpans(1.5, 2, 1).map((s) => [s.fromS, s.toS, s.warmup]), [[0, 1, true], [1, 1.5, true], [1.5, 2.5, false], [2.5, 3.5, false]]);
  t.same(windowSpans(0, 0.3, 0.1).map((s) => s.toS), [0.1, 0.2, 0.3], 'no float drift at window edges');
  t.same(windowSpans(0, 1, 5).map((s) => [s.fromS, s.toS]), [[0, 1]], 'a window longer than the run is cut at its end');
});

t.test("a window counts the queries sent in it: goodput, violations, errors by code, accuracy, cost", async (t) => {
  const outcomes = [
    answer(0, 100, 20), answer(1, 200, 40, { correct: false, promisedAccuracy: 0.8 }), answer(2, 300, 150), // one late (objective 100)
    error(3, 400, 'NO_CAPACITY'), error(4, 500, 'NO_CAPACITY'), error(5, 600, 'TIMEOUT'),
    answer(6, 1200, 10), // next window, even though window 0's answers came back later
  ];
  const w = windowStats(outcomes, { window: '0', fromS: 0, toS: 1, warmup: false }, 100);
  t.equal(w.sent, 6);
  t.equal(w.answered, 3);
  t.equal(w.good, 2);
  t.equal(w.late, 1);
  t.equal(w.errors, 3);
  t.same(w.errorsByCode, { NO_CAPACITY: 2, TIMEOUT: 1 });
  t.equal(w.violations, 4, 'late answers plus errors');
  t.equal(w.offeredQps, 6);
  t.equal(w.achievedQps, 3);
  t.equal(w.goodputQps, 2);
  t.equal(w.p50, 40);
  t.equal(w.p99, 150);
  t.equal(w.accuracyDelivered, 2 / 3);
  t.ok(Math.abs(w.accuracyPromised! - (0.9 + 0.8 + 0.9) / 3) < 1e-12, 'mean promised accuracy of the answers');
  t.ok(Math.abs(w.cost - 3e-6) < 1e-18);
  t.ok(Math.abs(w.costPerQuery! - 1e-6) < 1e-18, 'cost per answer');
  t.same(w.variants, { 'm.a': 3 });

  const half = windowStats(outcomes, { window: '1', fromS: 1, toS: 1.5, warmup: false }, 100);
  t.equal(half.sent, 1);
  t.equal(half.offeredQps, 2, 'rates divide by the window length');
});

t.test('without answers, latency, accuracy and cost per query are n/a (null); unknown promises too', async (t) => {
  const w = windowStats([error(0, 10, 'INFEASIBLE'), answer(1, 5000, 1)], { window: '0', fromS: 0, toS: 1, warmup: false }, 100);
  t.equal(w.p50, null);
  t.equal(w.accuracyDelivered, null);
  t.equal(w.accuracyPromised, null);
  t.equal(w.costPerQuery, null);
  t.equal(w.violations, 1);
  const unknown = windowStats([answer(0, 10, 1, { promisedAccuracy: undefined })], { window: '0', fromS: 0, toS: 1, warmup: false }, 100);
  t.equal(unknown.accuracyDelivered, 1);
  t.equal(unknown.accuracyPromised, null);
});

t.test('the overall excludes the warmup', async (t) => {
  const outcomes = [error(0, 500, 'INSTANCE_LOADING'), answer(1, 1500, 10), answer(2, 2500, 10), answer(3, 2900, 200)];
  const { windows, overall } = summarise(outcomes, { warmupS: 1, durationS: 2, windowS: 1, objectiveMs: 100 });
  t.same(windows.map((w) => [w.warmup, w.sent]), [[true, 1], [false, 1], [false, 2]]);
  t.equal(overall.window, 'overall');
  t.equal(overall.sent, 3);
  t.equal(overall.errors, 0, "the warmup's error is not in the overall");
  t.equal(overall.good, 2);
  t.equal(overall.goodputQps, 1);
  t.equal(overall.achievedQps, 1.5);
});

t.test('Poisson arrivals are seeded and come at the rate, with exponential gaps', async (t) => {
  t.same(poissonArrivals(50, 2, 7), poissonArrivals(50, 2, 7), 'the same seed, the same arrivals');
  t.not(poissonArrivals(50, 2, 7)[0], poissonArrivals(50, 2, 8)[0], 'another seed, other arrivals');
  const rate = 200;
  const seconds = 100;
  const a = poissonArrivals(rate, seconds, 1);
  // Count ~ Poisson(20000): sd ~141, so 5 sd is ~3.5 %.
  t.ok(Math.abs(a.length - rate * seconds) < 5 * Math.sqrt(rate * seconds), `${a.length} arrivals, expected ~${rate * seconds}`);
  t.ok(a.every((x, i) => x >= 0 && x < seconds * 1000 && (i === 0 || x >= a[i - 1])), 'ascending, inside the run');
  const gaps = a.slice(1).map((x, i) => x - a[i]);
  const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / gaps.length);
  t.ok(Math.abs(mean - 1000 / rate) < 0.05 * (1000 / rate), `mean gap ${mean.toFixed(3)} ms`);
  t.ok(Math.abs(sd / mean - 1) < 0.05, `coefficient of variation ${(sd / mean).toFixed(3)} (1 for exponential)`);
  t.same(poissonArrivals(0, 10, 1), []);
});
