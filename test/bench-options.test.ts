// `infaas bench`'s flags to options: the load a shape or trace makes, the run's length from a trace,
// a mix instead of one class, and refusals of combinations that mean nothing, with the reason.
import t from 'tap';
import { benchOptions, type BenchFlags } from '../bench/live/options.js';
import { expectedArrivals } from '../bench/trace.js';

const files: Record<string, string> = {
  'ramp.csv': 'seconds,rate\n0,10\n20,30\n',
  'bad.csv': '0,1\n0,2\n',
  'mix.json': '[{"name":"fast","model":"cnn","latencyMs":20,"weight":3},{"name":"slow","task":"digits","latencyMs":200}]',
  'twice.json': '[{"name":"x","task":"a","latencyMs":20},{"name":"x","task":"b","latencyMs":30}]',
};
const read = (path: string): string => {
  if (!(path in files)) throw new Error(`ENOENT: no such file, open '${path}'`);
  return files[path];
};
const opts = (f: BenchFlags) => benchOptions(f, read, 'zoo-task');

t.test('without load flags: one outstanding query, the default target and objective', async (t) => {
  t.same(opts({}), { load: { kind: 'closed', concurrency: 1 }, durationS: 10, warmupS: 2, windowS: 1, seed: 1, retry: true, target: { task: 'zoo-task' }, latencyMs: 100 });
  t.same(opts({ rate: 50, model: 'cnn', latency: 30, minAccuracy: 0.9 }).load, { kind: 'open', rate: 50 });
  t.same(opts({ variant: 'cnn.fp32' }).target, { variant: 'cnn.fp32' });
});

t.test('a shape is built over warmup + duration, with the scale and the seed', async (t) => {
  const o = opts({ shape: 'fluctuating', warmup: 1, duration: 5, rateScale: 0.5 });
  t.equal(o.durationS, 5);
  if (o.load.kind !== 'trace') throw new Error('expected a trace load');
  t.equal(o.load.trace.durationS, 6);
  t.equal(Math.max(...o.load.trace.points.map((p) => p.rate)), 40, "the paper's 80 q/s at half scale");
  const d = opts({ shape: 'diurnal', seed: 4 });
  t.equal(d.load.kind === 'trace' && d.load.trace.durationS, 12, 'default duration 10 s plus the 2 s warmup');
});

t.test("a trace sets the run's length, scaled; --duration may cut it, not extend it", async (t) => {
  const o = opts({ trace: 'ramp.csv', warmup: 3, timeScale: 0.5, rateScale: 2 });
  t.equal(o.durationS, 7, '20 s at half time is 10 s, less the 3 s warmup');
  if (o.load.kind !== 'trace') throw new Error('expected a trace load');
  t.equal(expectedArrivals(o.load.trace, 0, 10), 400, 'twice the rates (20 to 60 q/s) over 10 s');
  const cut = opts({ trace: 'ramp.csv', warmup: 2, duration: 8 });
  t.equal(cut.load.kind === 'trace' && cut.load.trace.durationS, 10);
  t.throws(() => opts({ trace: 'ramp.csv', warmup: 2, duration: 19 }), /--trace ramp.csv lasts 20 s: shorter than --warmup \+ --duration \(21 s\)/);
  t.throws(() => opts({ trace: 'ramp.csv', warmup: 20 }), /lasts 20 s: no longer than the warmup \(20 s\)/);
  t.throws(() => opts({ trace: 'bad.csv' }), /--trace bad.csv: trace point 2: times must rise/);
  t.throws(() => opts({ trace: 'none.csv' }), /--trace none.csv: ENOENT/);
});

t.test('a mix replaces the one class; it refuses the flags it replaces', async (t) => {
  const o = opts({ rate: 20, mix: 'mix.json' });
  t.same(o.mix?.map((c) => [c.name, c.weight, c.latencyMs]), [['fast', 3, 20], ['slow', 1, 200]]);
  t.equal(o.latencyMs, undefined, 'no run-wide objective');
  t.equal(o.target, undefined);
  t.throws(() => opts({ mix: 'mix.json', latency: 50, task: 'x' }), /--mix gives each class its target and objective: drop --task, --latency/);
  t.throws(() => opts({ mix: 'mix.json', minAccuracy: 0.5 }), /drop --min-accuracy/);
  t.throws(() => opts({ mix: 'nope.json' }), /--mix nope.json: ENOENT/);
  t.throws(() => opts({ mix: 'twice.json' }), /--mix twice.json: two classes of the mix are named "x"/);
});

t.test('one load at a time, and scales only where they apply', async (t) => {
  t.throws(() => opts({ rate: 10, shape: 'flat' }), /--rate and --shape: one load at a time/);
  t.throws(() => opts({ shape: 'flat', trace: 'ramp.csv' }), /--shape and --trace: one load at a time/);
  t.throws(() => opts({ rate: 10, concurrency: 2 }), /--rate and --concurrency: one load at a time/);
  t.throws(() => opts({ shape: 'square' }), /--shape square: one of flat, steady, fluctuating, diurnal/);
  t.throws(() => opts({ rate: 10, rateScale: 2 }), /--rate-scale scales the rates of --shape or --trace/);
  t.throws(() => opts({ shape: 'flat', timeScale: 2 }), /--time-scale stretches a --trace file/);
  t.throws(() => opts({ model: 'a', variant: 'a.b' }), /--model or --variant, not both/);
});
