// The monitor's classification policy: pure, with hysteresis.
import t from 'tap';
import { classifyInstance, defaultThresholds, initialClassifierState, type ClassifierState, type InstanceSample } from '../actors/monitor/classify.js';

const calm: InstanceSample = { arrivalRate: 50, capacity: 100, queueLength: 0, queueGrowth: 0, latency: [{ batch: 4, observedMs: 2.1, profiledMs: 2 }] };

function run(samples: InstanceSample[], from: ClassifierState = initialClassifierState, th = defaultThresholds): string[] {
  let s = from;
  return samples.map((x) => (s = classifyInstance(s, x, th).state).verdict);
}

t.test('a calm instance stays active', async (t) => {
  t.same(run([calm, calm, calm]), ['active', 'active', 'active']);
});

t.test('demand above capacity makes it overloaded after two windows, not one', async (t) => {
  const hot = { ...calm, arrivalRate: 130, queueLength: 20, queueGrowth: 10, latency: [{ batch: 8, observedMs: 9, profiledMs: 3 }] };
  t.same(run([hot, hot, hot]), ['active', 'overloaded', 'overloaded']);
  t.same(run([hot, calm, hot, calm]), ['active', 'active', 'active', 'active'], 'one-window spikes do not flip it');
});

t.test('slow batches without excess demand mean interference, not overload', async (t) => {
  const slow = { ...calm, latency: [{ batch: 4, observedMs: 4, profiledMs: 2 }] };
  t.same(run([slow, slow]), ['active', 'interfered']);
  const r = classifyInstance({ verdict: 'active', pending: 'interfered', streak: 1 }, slow);
  t.match(r.reason, /latency x1\.78 of profile/, '4 ms against 2 ms profiled + 0.25 ms allowance');
  t.ok(r.changed);
});

t.test('hysteresis: leaving a state needs the lower exit threshold', async (t) => {
  const interfered: ClassifierState = { verdict: 'interfered', pending: 'interfered', streak: 5 };
  const between = { ...calm, latency: [{ batch: 4, observedMs: 2.9, profiledMs: 2 }] }; // x1.29 of 2.25: below enter, above exit
  t.same(run([between, between, between], interfered), ['interfered', 'interfered', 'interfered']);
  t.same(run([between, between], initialClassifierState), ['active', 'active'], 'x1.3 does not enter interference');
  const recovered = { ...calm, latency: [{ batch: 4, observedMs: 2.1, profiledMs: 2 }] };
  t.same(run([recovered, recovered], interfered), ['interfered', 'active']);

  const overloaded: ClassifierState = { verdict: 'overloaded', pending: 'overloaded', streak: 5 };
  const ninety = { ...calm, arrivalRate: 90 }; // below enter (100 %), above exit (80 %)
  t.same(run([ninety, ninety], overloaded), ['overloaded', 'overloaded']);
  t.same(run([ninety, ninety]), ['active', 'active']);
});

t.test('an allowance per run keeps tiny models from reading as slowed down by wake-up costs', async (t) => {
  // 0.02 ms profiled, 0.12 ms observed in an isolated run: x6 raw, x0.44 with the 0.25 ms allowance.
  const tiny = { ...calm, latency: [{ batch: 1, observedMs: 0.12, profiledMs: 0.02 }] };
  t.same(run([tiny, tiny, tiny]), ['active', 'active', 'active']);
  t.same(run([tiny, tiny], initialClassifierState, { ...defaultThresholds, allowanceMs: 0 }), ['active', 'interfered'], 'without it: interfered');
  // A 5.5 ms batch slowed to 9.9 ms by neighbours (measured) is still x1.72.
  const shared = { ...calm, latency: [{ batch: 8, observedMs: 9.9, profiledMs: 5.5 }] };
  t.same(run([shared, shared]), ['active', 'interfered']);
});

t.test('no capacity at all is overload; no latency data keeps the verdict', async (t) => {
  t.same(run([{ ...calm, capacity: 0 }, { ...calm, capacity: 0 }]), ['active', 'overloaded']);
  const quiet = { ...calm, arrivalRate: 0, latency: [] };
  t.same(run([quiet, quiet], { verdict: 'interfered', pending: 'interfered', streak: 3 }), ['interfered', 'interfered']);
  t.equal(defaultThresholds.interferenceEnter, 1.5);
});

t.test('observed deadline misses overrule the computed capacity', async (t) => {
  const calm = { arrivalRate: 40, capacity: 100, queueLength: 0, queueGrowth: 0, latency: [], queries: 400, deadlineMisses: 60 };
  let state = initialClassifierState;
  for (let i = 0; i < 2; i++) state = classifyInstance(state, calm).state;
  t.equal(state.verdict, 'overloaded', 'at 40 % of capacity, 15 % missed: overloaded');
  const c = classifyInstance(initialClassifierState, calm);
  t.match(c.reason, /60 of 400 missed deadlines/);
  let fine = initialClassifierState;
  for (let i = 0; i < 3; i++) fine = classifyInstance(fine, { ...calm, deadlineMisses: 2 }).state;
  t.equal(fine.verdict, 'active', 'two misses in a window are noise');
});
