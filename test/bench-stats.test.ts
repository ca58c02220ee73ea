// The arithmetic of `infaas bench` on hand-made outcomes: windows, percentiles, goodput,
// violations, accuracy delivered and promised, cost; each query's own objective in a mix, class
// statistics, the load's target and the provisioned cost of sampled fleets; the seeded Poisson arrivals.
import t from 'tap';
import { percentile, poissonArrivals, summarise, windowSpans, windowStats, type BenchOutcome } from '../bench/live/stats.js';
import { fleetInSpan, type FleetSample } from '../bench/live/fleet.js';
import { parseTrace, expectedArrivals } from '../bench/trace.js';

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

t.test("in a mix, an answer is good within its own class's objective, else the run's", async (t) => {
  const outcomes = [
    answer(0, 100, 30, { cls: 'fast', objectiveMs: 20 }), // late for its class, though within the run's 100
    answer(1, 200, 15, { cls: 'fast', objectiveMs: 20 }),
    answer(2, 300, 150, { cls: 'slow', objectiveMs: 200 }), // good for its class, though past the run's 100
    answer(3, 400, 250, { cls: 'slow', objectiveMs: 200 }),
    error(4, 500, 'NO_CAPACITY'),
    answer(5, 600, 50), // no class: the run's objective
  ];
  const w = windowStats(outcomes, { window: '0', fromS: 0, toS: 1, warmup: false }, 100);
  t.equal(w.good, 3, 'answers 1, 2 and 5');
  t.equal(w.late, 2, 'answers 0 and 3');
  t.equal(w.violations, 3);
  t.equal(w.goodputQps, 3);
});

t.test('class statistics: each class overall, with its share of the target', async (t) => {
  const cls = (name: string, objectiveMs: number) => ({ cls: name, objectiveMs });
  const outcomes = [
    answer(0, 500, 10, cls('fast', 20)), // warmup
    answer(1, 1100, 10, cls('fast', 20)), answer(2, 1200, 30, cls('fast', 20)), error(3, 1300, 'TIMEOUT'),
    { ...error(4, 1400, 'INFEASIBLE'), ...cls('fast', 20) },
    answer(5, 1500, 150, cls('slow', 200)), answer(6, 2500, 150, { ...cls('slow', 200), cost: 3e-6 }),
  ];
  const rate = 4;
  const { overall, classes } = summarise(outcomes, {
    warmupS: 1, durationS: 2, windowS: 1, objectiveMs: 100, classes: [{ name: 'fast', share: 0.25 }, { name: 'slow', share: 0.75 }],
  }, { expectedArrivals: (from, to) => rate * (to - from) });
  t.same(Object.keys(classes!), ['fast', 'slow']);
  const fast = classes!.fast;
  t.equal(fast.window, 'overall');
  t.equal(fast.sent, 3, "the warmup's and the class-less outcomes are not the class's");
  t.equal(fast.good, 1);
  t.equal(fast.late, 1);
  t.same(fast.errorsByCode, { INFEASIBLE: 1 });
  t.equal(fast.targetQps, 1, 'a quarter of 4 q/s');
  t.equal(fast.provisionedCost, null, 'the fleet serves every class: no per-class provisioned cost');
  const slow = classes!.slow;
  t.equal(slow.sent, 2);
  t.equal(slow.good, 2);
  t.equal(slow.targetQps, 3);
  t.ok(Math.abs(slow.cost - 4e-6) < 1e-18);
  t.equal(overall.sent, 6);
  t.equal(overall.targetQps, 4);
  t.equal(summarise(outcomes, { warmupS: 1, durationS: 2, windowS: 1, objectiveMs: 100 }).classes, undefined, 'no classes without a mix');
});

t.test("the target is the load's expected arrivals over the window's length; null for a closed loop", async (t) => {
  const trace = parseTrace('0,10\n2,30');
  const ctx = { expectedArrivals: (from: number, to: number) => expectedArrivals(trace, from, to) };
  const { windows, overall } = summarise([], { warmupS: 0.5, durationS: 1.5, windowS: 1, objectiveMs: 100 }, ctx);
  t.same(windows.map((w) => w.targetQps), [12.5, 20, 27.5], 'the mean rate of each window: [0, 0.5), [0.5, 1.5), [1.5, 2)');
  t.equal(overall.targetQps, 22.5, 'the measured part only');
  t.equal(windows[0].offeredQps, 0, 'offered is what was sent: nothing here');
  t.equal(summarise([], { warmupS: 0, durationS: 1, windowS: 1, objectiveMs: 100 }).overall.targetQps, null);
});

t.test('provisioned cost: each sample held until the next, priced per hour, split at window edges', async (t) => {
  const w = (id: string, pricePerHour: number) => ({ id, hardwareClass: 'cpu', pricePerHour });
  const samples: FleetSample[] = [
    { atMs: 2, workers: [w('a', 3.6)] }, // held back to 0: the first sample stands for the start
    { atMs: 1500, workers: [w('a', 3.6), w('b', 7.2)] },
    { atMs: 2500, workers: [w('b', 7.2)] },
  ];
  const near = (x: number | null, y: number) => x !== null && Math.abs(x - y) < 1e-12;
  const first = fleetInSpan(samples, 3000, 0, 1);
  t.equal(first.workers, 1);
  t.ok(near(first.workerSeconds, 1));
  t.ok(near(first.provisionedCost, 0.001), '$3.6/h for 1 s');
  const second = fleetInSpan(samples, 3000, 1, 2);
  t.equal(second.workers, 2);
  t.ok(near(second.workerSeconds, 0.5 + 0.5 * 2));
  t.ok(near(second.provisionedCost, (3.6 * 1 + 7.2 * 0.5) / 3600), 'a for the whole second, b from 1.5 s');
  const third = fleetInSpan(samples, 3000, 2, 3);
  t.ok(near(third.provisionedCost, (3.6 * 0.5 + 7.2 * 1) / 3600), 'a until 2.5 s, b until the end');
  t.equal(third.workers, 2);
  const all = fleetInSpan(samples, 3000, 0, 3);
  t.ok(near(all.provisionedCost, first.provisionedCost! + second.provisionedCost! + third.provisionedCost!), 'windows add up to the whole');
  t.ok(near(fleetInSpan(samples, 2800, 2, 3).workerSeconds, 0.5 + 0.8), 'nothing past the last sample\'s end');
  t.same(fleetInSpan([], 3000, 0, 1), { workers: null, workerSeconds: null, provisionedCost: null }, 'not sampled: null');
  t.same(fleetInSpan([{ atMs: 0, workers: [] }], 1000, 0, 1), { workers: 0, workerSeconds: 0, provisionedCost: 0 }, 'no workers: zero, measured');
});

t.test('an unreadable fleet sample makes the windows it holds over null, never a guess', async (t) => {
  const samples: FleetSample[] = [{ atMs: 0, workers: [{ id: 'a', hardwareClass: 'cpu', pricePerHour: 1 }] }, { atMs: 1000, workers: null }, { atMs: 2000, workers: [] }];
  t.equal(fleetInSpan(samples, 3000, 0, 1).provisionedCost, 1 / 3600);
  t.equal(fleetInSpan(samples, 3000, 1, 2).provisionedCost, null);
  t.equal(fleetInSpan(samples, 3000, 0, 3).provisionedCost, null, 'nor the overall');
  t.equal(fleetInSpan(samples, 3000, 2, 3).provisionedCost, 0);
});

t.test('windows carry the provisioned cost and its cost per good answer', async (t) => {
  const fleet = { samples: [{ atMs: 0, workers: [{ id: 'a', hardwareClass: 'cpu', pricePerHour: 36 }] }], untilMs: 3000 };
  const outcomes = [answer(0, 1100, 10), answer(1, 1200, 500), answer(2, 2100, 10), error(3, 2200, 'TIMEOUT')];
  const { windows, overall } = summarise(outcomes, { warmupS: 1, durationS: 2, windowS: 1, objectiveMs: 100 }, { fleet });
  t.same(windows.map((w) => w.workers), [1, 1, 1]);
  t.same(windows.map((w) => w.provisionedCost), [0.01, 0.01, 0.01], '$36/h is a cent a second');
  t.equal(overall.provisionedCost, 0.02, 'the warmup second is not in the overall');
  t.equal(overall.good, 2);
  t.equal(overall.provisionedCostPerGood, 0.01);
  t.equal(windows[0].provisionedCostPerGood, null, 'no good answer in the warmup window');
  t.equal(summarise(outcomes, { warmupS: 1, durationS: 2, windowS: 1, objectiveMs: 100 }).overall.provisionedCost, null, 'not sampled');
});
