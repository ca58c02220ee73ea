// The monitor's classification policy: pure, with hysteresis.
import t from 'tap';
import { classifyInstance, defaultThresholds, initialClassifierState, type ClassifierState, type InstanceSample } from '../actors/monitor/classify.js';

const calm: InstanceSample = { arrivalRate: 50, capacity: 100, queueLength: 0, queueGrowth: 0, latency: [{ batch: 4, observedMs: 2.1, profiledMs: 2 }] };

function run(samples: InstanceSample[], from: ClassifierState = initialClassifierState): string[] {
  let s = from;
  return samples.map((x) => (s = classifyInstance(s, x).state).verdict);
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
  t.match(r.reason, /latency x2\.00 of profile/);
  t.ok(r.changed);
});

t.test('hysteresis: leaving a state needs the lower exit threshold', async (t) => {
  const interfered: ClassifierState = { verdict: 'interfered', pending: 'interfered', streak: 5 };
  const between = { ...calm, latency: [{ batch: 4, observedMs: 2.6, profiledMs: 2 }] }; // x1.3: below enter, above exit
  t.same(run([between, between, between], interfered), ['interfered', 'interfered', 'interfered']);
  t.same(run([between, between], initialClassifierState), ['active', 'active'], 'x1.3 does not enter interference');
  const recovered = { ...calm, latency: [{ batch: 4, observedMs: 2.1, profiledMs: 2 }] };
  t.same(run([recovered, recovered], interfered), ['interfered', 'active']);

  const overloaded: ClassifierState = { verdict: 'overloaded', pending: 'overloaded', streak: 5 };
  const ninety = { ...calm, arrivalRate: 90 }; // below enter (100 %), above exit (80 %)
  t.same(run([ninety, ninety], overloaded), ['overloaded', 'overloaded']);
  t.same(run([ninety, ninety]), ['active', 'active']);
});

t.test('no capacity at all is overload; no latency data keeps the verdict', async (t) => {
  t.same(run([{ ...calm, capacity: 0 }, { ...calm, capacity: 0 }]), ['active', 'overloaded']);
  const quiet = { ...calm, arrivalRate: 0, latency: [] };
  t.same(run([quiet, quiet], { verdict: 'interfered', pending: 'interfered', streak: 3 }), ['interfered', 'interfered']);
  t.equal(defaultThresholds.interferenceEnter, 1.5);
});
