// Load shapes, trace files and query mixes (bench/trace.ts): arrivals follow the trace's expected
// counts overall and per window, rates interpolate, bad input is refused with a reason, mixes draw
// their shares, and the same seed gives the same everything.
import t, { type Test } from 'tap';
import {
  assignClasses, classPicker, cutTrace, expectedArrivals, meanRate, namedShape, parseMix, parseTrace, rateAt, scaleTrace, shapeNames,
  traceArrivals, traceCsv, type QueryClass, type RateTrace,
} from '../bench/trace.js';

const SEEDS = [1, 2, 3, 4, 5];

/**
 * Over SEEDS, the mean count of arrivals in [fromS, toS) is within 3 sigma of the trace's expected
 * count: a Poisson count has variance equal to its mean, so the mean of n counts has variance Λ/n.
 */
function checkCounts(t: Test, trace: RateTrace, windowS: number): void {
  const runs = SEEDS.map((s) => traceArrivals(trace, s));
  const within = (fromS: number, toS: number, what: string) => {
    const expected = expectedArrivals(trace, fromS, toS);
    const mean = runs.reduce((a, r) => a + r.filter((ms) => ms >= fromS * 1000 && ms < toS * 1000).length, 0) / runs.length;
    const sigma = Math.sqrt(expected / runs.length);
    t.ok(Math.abs(mean - expected) <= 3 * sigma + 1e-9, `${trace.name} ${what}: mean ${mean.toFixed(1)} arrivals, expected ${expected.toFixed(1)} ± ${(3 * sigma).toFixed(1)}`);
  };
  within(0, trace.durationS, 'whole trace');
  for (let from = 0; from < trace.durationS - 1e-9; from += windowS) {
    const to = Math.min(trace.durationS, from + windowS);
    within(from, to, `[${from}, ${to}) s`);
  }
  for (const r of runs) {
    if (!r.every((ms, i) => ms >= 0 && ms < trace.durationS * 1000 && (i === 0 || ms >= r[i - 1]))) t.fail(`${trace.name}: arrivals ascend inside the trace`);
  }
}

t.test('arrivals of each named shape follow its expected counts, overall and per window', async (t) => {
  const duration = 30;
  for (const name of shapeNames) {
    // Steady is 650-700 q/s at the paper's scale: a tenth keeps the test fast with the same shape.
    const trace = namedShape(name, duration, name === 'steady' ? 0.1 : 1, 7);
    t.equal(trace.name, name);
    t.equal(trace.durationS, duration);
    checkCounts(t, trace, 5);
  }
});

t.test('arrivals of a parsed trace follow its expected counts; a flat trace at the Poisson rate', async (t) => {
  const trace = parseTrace('seconds,rate\n0,10\n5,60\n10,60\n12,0\n20,20\n', 'ramps');
  t.equal(trace.durationS, 20);
  t.equal(expectedArrivals(trace, 0, 20), 175 + 300 + 60 + 80, 'trapezoids: 175 + 300 + 60 + 80');
  checkCounts(t, trace, 2);
  checkCounts(t, parseTrace('0,40\n10,40'), 1);
});

t.test('rates interpolate linearly between points and hold outside them', async (t) => {
  const trace = parseTrace('1,10\n3,30\n4,0');
  t.equal(rateAt(trace, 0), 10, 'before the first point: its rate');
  t.equal(rateAt(trace, 1), 10);
  t.equal(rateAt(trace, 2), 20);
  t.equal(rateAt(trace, 2.5), 25);
  t.equal(rateAt(trace, 3.5), 15);
  t.equal(rateAt(trace, 9), 0, 'after the last point: its rate');
  t.equal(expectedArrivals(trace, 0, 1), 10, 'held at the first rate before it');
  t.equal(expectedArrivals(trace, 2, 3.5), 25 + 11.25, 'trapezoids across a breakpoint');
  t.equal(meanRate(trace), (10 + 40 + 15) / 4);
});

t.test('trace files: CSV and JSON forms, a header and comments; errors name the problem', async (t) => {
  const csv = parseTrace('seconds,rate\n# a comment\n\n0,1\n2;3\n4\t5\n');
  t.same(csv.points, [{ t: 0, rate: 1 }, { t: 2, rate: 3 }, { t: 4, rate: 5 }]);
  t.same(parseTrace('[{"t":0,"rate":1},{"t":2,"rate":3}]').points, [{ t: 0, rate: 1 }, { t: 2, rate: 3 }]);
  t.same(parseTrace('{"points":[{"t":0,"rate":1},{"t":2,"rate":3}]}').points, [{ t: 0, rate: 1 }, { t: 2, rate: 3 }]);
  t.same(parseTrace(traceCsv(csv)).points, csv.points, 'traceCsv reads back');
  t.equal(parseTrace('0,5', 'one', 3).durationS, 3, 'a one-point trace with a duration');

  t.throws(() => parseTrace('0,1\n2,3\n2,4'), /point 3: times must rise \(2 then 2\)/, 'equal times');
  t.throws(() => parseTrace('0,1\n3,3\n2,4'), /times must rise \(3 then 2\)/, 'falling times');
  t.throws(() => parseTrace('0,1\nabc,3'), /trace line 2: expected "seconds,rate", got "abc,3"/, 'a bad line');
  t.throws(() => parseTrace('0,1\n1,2,3'), /trace line 2/, 'three fields');
  t.throws(() => parseTrace(''), /no points/, 'empty');
  t.throws(() => parseTrace('seconds,rate\n# only a comment\n'), /no points/, 'only a header');
  t.throws(() => parseTrace('0,-1\n1,2'), /point 1: time and rate must be >= 0/, 'a negative rate');
  t.throws(() => parseTrace('0,5'), /duration must be > 0/, 'one point without a duration');
  t.throws(() => parseTrace('[{"t":0}]'), /point 0 needs numbers t and rate/);
  t.throws(() => parseTrace('{"rates":[]}'), /expected \[\{t, rate\}\]/);
});

t.test('scaling and cutting keep the expected counts consistent', async (t) => {
  const trace = parseTrace('0,10\n10,30');
  const slow = scaleTrace(trace, { time: 2, rate: 0.5 });
  t.equal(slow.durationS, 20);
  t.equal(expectedArrivals(slow, 0, 20), expectedArrivals(trace, 0, 10), 'twice as long at half the rate: the same arrivals');
  t.equal(rateAt(slow, 10), 10, 'the middle of the stretched trace: half of 20');
  const cut = cutTrace(trace, 4);
  t.equal(cut.durationS, 4);
  t.equal(expectedArrivals(cut, 0, 4), expectedArrivals(trace, 0, 4));
  t.equal(cut.points.at(-1)!.rate, 18, 'ends on the interpolated rate');
  t.equal(cutTrace(trace, 10), trace, 'the whole trace is itself');
  t.throws(() => cutTrace(trace, 11), /cut: duration in \(0, 10\]/);
  t.ok(traceArrivals(cut, 3).every((ms) => ms < 4000));
});

t.test('the same seed gives the same trace, arrivals and classes; another seed others', async (t) => {
  t.same(namedShape('diurnal', 60, 1, 3), namedShape('diurnal', 60, 1, 3));
  t.not(JSON.stringify(namedShape('diurnal', 60, 1, 3).points), JSON.stringify(namedShape('diurnal', 60, 1, 4).points));
  const trace = namedShape('fluctuating', 20);
  t.same(traceArrivals(trace, 9), traceArrivals(trace, 9));
  t.not(traceArrivals(trace, 9)[0], traceArrivals(trace, 10)[0]);
  const mix = parseMix('[{"task":"a","latencyMs":10},{"task":"b","latencyMs":20,"weight":2}]');
  t.same(assignClasses(500, mix, 5), assignClasses(500, mix, 5));
  t.not(assignClasses(500, mix, 5).join(''), assignClasses(500, mix, 6).join(''));
  t.throws(() => namedShape('sawtooth', 10), /unknown load shape "sawtooth" \(one of: flat, steady, fluctuating, diurnal\)/);
});

t.test('query mixes: defaults, and errors that name the class and the field', async (t) => {
  const mix = parseMix('[{"name":"fast","model":"cnn","latencyMs":20,"minAccuracy":0.9,"weight":3},{"variant":"mlp.fp32","latencyMs":200}]');
  t.same(mix, [
    { name: 'fast', weight: 3, target: { model: 'cnn' }, latencyMs: 20, minAccuracy: 0.9 },
    { name: 'mlp.fp32@200ms', weight: 1, target: { variant: 'mlp.fp32' }, latencyMs: 200 },
  ]);
  t.throws(() => parseMix('{'), /query mix: not JSON/);
  t.throws(() => parseMix('[]'), /non-empty JSON array/);
  t.throws(() => parseMix('{"task":"a","latencyMs":1}'), /non-empty JSON array/);
  t.throws(() => parseMix('[{"task":"a","model":"b","latencyMs":1}]'), /class 1: exactly one of task, model, variant/);
  t.throws(() => parseMix('[{"latencyMs":1}]'), /class 1: exactly one of task, model, variant/);
  t.throws(() => parseMix('[{"task":"a","latencyMs":1},{"task":"b"}]'), /class 2: latencyMs must be a number > 0/);
  t.throws(() => parseMix('[{"task":"a","latencyMs":1,"weight":0}]'), /weight must be a number > 0/);
  t.throws(() => parseMix('[{"task":"a","latencyMs":1,"minAccuracy":1.5}]'), /minAccuracy must be in \[0, 1\]/);
});

t.test('classes are drawn in proportion to their weights; the picker draws the same sequence', async (t) => {
  const mix: QueryClass[] = [
    { name: 'a', weight: 1, target: { task: 't' }, latencyMs: 10 },
    { name: 'b', weight: 3, target: { task: 't' }, latencyMs: 20 },
    { name: 'c', weight: 6, target: { task: 't' }, latencyMs: 30 },
  ];
  const n = 20_000;
  const drawn = assignClasses(n, mix, 11);
  mix.forEach((c, k) => {
    const p = c.weight / 10;
    const got = drawn.filter((x) => x === k).length;
    const sigma = Math.sqrt(n * p * (1 - p));
    t.ok(Math.abs(got - n * p) <= 3 * sigma, `class ${c.name}: ${got} of ${n}, expected ${n * p} ± ${(3 * sigma).toFixed(0)}`);
  });
  const pick = classPicker(mix, 11);
  t.same(Array.from({ length: 1000 }, () => pick()), drawn.slice(0, 1000), 'one at a time, the same draws as assignClasses');
  t.same(assignClasses(5, mix.slice(0, 1), 11), [0, 0, 0, 0, 0], 'one class: every query');
});
