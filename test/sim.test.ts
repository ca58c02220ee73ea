// The trace simulator: its event ordering, its statistics against bench/live/stats.ts, the
// accelerator profiles it derives, and outcomes of runs on hand-made profiles (every query gets
// exactly one outcome; same seed, same run; overload is met by replicas and new workers).
import t from 'tap';
import type { CandidateProfile } from '../actors/dispatcher/select-variant.js';
import { seededRandom } from '../runtime/random.js';
import { summarise, type BenchOutcome } from '../bench/live/stats.js';
import { flatTrace, fluctuatingTrace } from '../bench/trace.js';
import { EventQueue } from '../bench/sim/events.js';
import { deriveProfile, paperClasses, profilesForClasses, type HardwareClass } from '../bench/sim/hardware.js';
import { SimStats } from '../bench/sim/metrics.js';
import { simulate, type SimOptions } from '../bench/sim/simulate.js';
import { comparisonTable } from '../bench/sim/report.js';

t.test('events pop in time order, ties in the order they were scheduled', async (t) => {
  const q = new EventQueue<number>();
  const random = seededRandom(5);
  const pushed: { time: number; n: number }[] = [];
  for (let n = 0; n < 2000; n++) {
    const time = Math.floor(random() * 50); // many ties
    q.push(time, n);
    pushed.push({ time, n });
  }
  const popped: number[] = [];
  for (let e = q.pop(); e; e = q.pop()) popped.push(e.item);
  const expected = [...pushed].sort((a, b) => a.time - b.time || a.n - b.n).map((x) => x.n);
  t.same(popped, expected);
  t.equal(q.size, 0);
  t.throws(() => q.push(NaN, 1), /finite/);
});

t.test('the simulator statistics agree with infaas bench arithmetic on the same outcomes', async (t) => {
  const random = seededRandom(9);
  const outcomes: BenchOutcome[] = [];
  const stats = new SimStats(1, 2);
  for (let seq = 0; seq < 3000; seq++) {
    const sentAt = random() * 10_000;
    const ok = random() > 0.1;
    const doneAt = sentAt + random() * 30;
    const o: BenchOutcome = { seq, sentAt, doneAt, ok, ...(ok ? { variant: random() > 0.5 ? 'a' : 'b', cost: random() * 1e-6, promisedAccuracy: 0.9 } : { code: random() > 0.5 ? 'NO_CAPACITY' : 'DEADLINE_EXCEEDED' }) };
    outcomes.push(o);
    stats.sent(sentAt);
    stats.record({ sentAt, doneAt, objectiveMs: 20, cls: 'only', ok, ...(o.code ? { code: o.code } : {}), ...(o.variant ? { variant: o.variant } : {}), ...(o.cost !== undefined ? { cost: o.cost } : {}), ...(ok ? { promisedAccuracy: 0.9 } : {}) });
  }
  const live = summarise(outcomes, { warmupS: 2, durationS: 8, windowS: 1, objectiveMs: 20 });
  const sim = stats.finish(10, () => 0, () => 0);
  const fields = ['sent', 'answered', 'good', 'late', 'errors', 'violations', 'p50', 'p90', 'p99', 'errorsByCode', 'variants'] as const;
  for (const f of fields) t.same(sim.overall[f], live.overall[f], `overall ${f}`);
  t.ok(Math.abs(sim.overall.cost - live.overall.cost) < 1e-12, 'overall cost');
  t.equal(sim.windows.length, live.windows.length);
  sim.windows.forEach((w, i) => { for (const f of fields) t.same(w[f], live.windows[i][f], `window ${i} ${f}`); });
  t.same(sim.classes.only.good, live.overall.good, 'one class: its stats are the overall ones');
});

const cpuProfile = (id: string, model: string, accuracy: number, b1: number, extra: Partial<CandidateProfile> = {}): CandidateProfile => ({
  variantId: `${model}.${id}`, model, task: 'digits', hardwareClass: 'cpu', accuracy, precision: 'fp32', maxBatch: 8, threads: 1,
  loadMs: 300, peakMemoryBytes: 50e6, latency: [{ batch: 1, p50Ms: b1 }, { batch: 8, p50Ms: b1 * 4 }], ...extra,
});

t.test('accelerator profiles: fp32 only, one slot, launch plus work over speed-up, longer loads', async (t) => {
  const p = cpuProfile('fp32-b8-t2', 'big', 0.95, 2, { threads: 2 });
  const d = deriveProfile(p, 'gpu', { launchMs: 0.4, speedup: 20, loadExtraMs: 1000 })!;
  t.equal(d.hardwareClass, 'gpu');
  t.equal(d.threads, 1);
  t.equal(d.loadMs, 1300);
  t.same(d.latency.map((l) => l.batch), [1, 8]);
  t.ok(Math.abs(d.latency[0].p50Ms - (0.4 + (2 * 2) / 20)) < 1e-9 && Math.abs(d.latency[1].p50Ms - (0.4 + (8 * 2) / 20)) < 1e-9, 'launch + work / speed-up');
  t.equal(deriveProfile({ ...p, precision: 'int8' }, 'gpu', { launchMs: 0, speedup: 1, loadExtraMs: 0 }), undefined);
  const all = profilesForClasses([p, { ...p, variantId: 'big.int8', precision: 'int8' }], 'cpu', paperClasses);
  t.same(all.map((x) => `${x.variantId}@${x.hardwareClass}`).sort(), ['big.fp32-b8-t2@cpu', 'big.fp32-b8-t2@gpu', 'big.fp32-b8-t2@inf', 'big.int8@cpu'].sort());
});

const local: HardwareClass = { name: 'cpu', instanceType: 'test', pricePerHour: 0.4, threads: 2, memoryBytes: 4e9, startMs: 2000 };
const base = (over: Partial<SimOptions> = {}): SimOptions => ({
  profiles: [cpuProfile('fast', 'small', 0.9, 0.5), cpuProfile('slow', 'big', 0.96, 2)],
  classes: [local], initialWorkers: [{ hardwareClass: 'cpu', count: 1 }], autoscaleClasses: [],
  trace: flatTrace(100, 10), mix: [{ name: 'q', weight: 1, target: { task: 'digits' }, latencyMs: 20, minAccuracy: 0.95 }],
  seed: 3, policy: 'infaas', windowS: 1, ...over,
});

t.test('every query gets exactly one outcome, and the same seed gives the same run', async (t) => {
  const a = simulate(base());
  const b = simulate(base());
  t.equal(a.overall.sent, a.queries, 'every arrival is counted');
  t.equal(a.overall.answered + a.overall.errors, a.overall.sent, 'one answer or one error each');
  t.ok(a.queries > 800 && a.queries < 1200, `about 100 q/s for 10 s (${a.queries})`);
  t.same(a.overall, b.overall);
  t.same(a.decisions, b.decisions);
  const c = simulate(base({ seed: 4 }));
  t.not(c.queries, a.queries, 'another seed, other arrivals');
});

t.test('light load: the floor picks the accurate model, nearly all within the objective, one worker paid for', async (t) => {
  const r = simulate(base({ warmupS: 2 }));
  t.same(Object.keys(r.overall.variants), ['big.slow@cpu']);
  t.ok(r.overall.good / r.overall.sent > 0.99, `goodput share ${r.overall.good}/${r.overall.sent}`);
  // One worker of $0.4/h for the 8 measured seconds.
  t.ok(Math.abs(r.overall.provisionedCost - (0.4 * 8) / 3600) < 1e-12, `provisioned cost ${r.overall.provisionedCost}`);
});

t.test('overload: the model-autoscaler replicates, and the VM-autoscaler adds a worker when the first is full', async (t) => {
  // One instance of big.slow serves 8 rows / (8 ms + overhead) ~ 970 q/s at full batches; 2,500 q/s needs three: two fit the first worker.
  const opts = base({ trace: flatTrace(2500, 40), autoscaleClasses: ['cpu'], cluster: { cooldownMs: 5000 }, warmupS: 20 });
  const r = simulate(opts);
  const replicas = r.decisions.filter((d) => d.actor === 'model-autoscaler' && d.action.startsWith('replicate'));
  const scaleOut = r.decisions.filter((d) => d.actor === 'vm-autoscaler' && d.action.startsWith('scale-out'));
  t.ok(replicas.length >= 1, `replicated (${replicas.length})`);
  t.ok(scaleOut.length >= 1, `scaled out (${scaleOut.map((d) => `${d.atS}s: ${d.why}`).join('; ')})`);
  const last = r.windows.slice(-5);
  t.ok(last.every((w) => w.workers >= 2), `two workers at the end (${last.map((w) => w.workers).join(',')})`);
  const errShare = last.reduce((a, w) => a + w.violations, 0) / last.reduce((a, w) => a + w.sent, 0);
  const first = r.windows[0].violations / r.windows[0].sent;
  // Before any replica, more than half is refused; once placed, a few percent miss (jittered batches behind a full queue).
  t.ok(first > 0.3, `violations before scaling ${(first * 100).toFixed(1)} %`);
  t.ok(errShare < 0.1 && errShare < first / 5, `violations after scaling ${(errShare * 100).toFixed(1)} %`);
  t.match(comparisonTable([r]), /infaas/);
});

t.test('a fluctuating trace: workers come and go, cost follows the load', async (t) => {
  const trace = fluctuatingTrace({ low: 50, high: 2500, periodS: 240, durationS: 480 });
  const r = simulate(base({ trace, autoscaleClasses: ['cpu'], cluster: { cooldownMs: 5000, scaleInAfterMs: 20_000 }, windowS: 10 }));
  const maxWorkers = Math.max(...r.windows.map((w) => w.workers));
  t.ok(maxWorkers >= 2, `scaled out at the peaks (max ${maxWorkers})`);
  t.ok(r.decisions.some((d) => d.action.startsWith('scale-in')), 'scaled in at the troughs');
  t.ok(r.overall.good / r.overall.sent > 0.9, `goodput share ${(r.overall.good / r.overall.sent).toFixed(3)}`);
});

t.test('baselines in the simulator: fixed never switches, clipper batches under its AIMD cap', async (t) => {
  const fixed = simulate(base({ policy: 'fixed', trace: flatTrace(1500, 30), autoscaleClasses: ['cpu'] }));
  t.notOk(fixed.decisions.some((d) => d.action.startsWith('switch')), 'no switch');
  const clipper = simulate(base({ policy: 'clipper', trace: flatTrace(300, 10) }));
  t.equal(clipper.overall.answered + clipper.overall.errors, clipper.queries);
  t.throws(() => simulate(base({ policy: 'nope' })), /unknown selection policy/);
});
