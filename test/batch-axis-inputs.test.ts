// Queries batched on each input's own batch axis (a recurrent state [2, batch, 5] on axis 1),
// axis-less inputs shared only when equal, and outputs split back so that no query ever gets
// another query's rows or a value computed from them.
import t from 'tap';
import { checkInputs, concatBatch, splitOutputs, zeroInputs, type Feed } from '../actors/instance/inputs.js';
import { canShareRun, pickBatch } from '../actors/instance/batch-key.js';
import { arrayToTensor, tensorToArray } from '../runtime/bus/codec.js';
import { seededRandom } from '../runtime/random.js';
import type { Tensor, TensorSpec } from '../schemas/tensor.js';

// x [seq=4, batch, 3] and h [2, batch, 5], both batched on axis 1; a scalar gain without a batch axis.
const X: TensorSpec = { name: 'x', dtype: 'float32', shape: [4, null, 3], batchAxis: 1 };
const H: TensorSpec = { name: 'h', dtype: 'float32', shape: [2, null, 5], batchAxis: 1 };
const GAIN: TensorSpec = { name: 'gain', dtype: 'float32', shape: [], batchAxis: null };
const RNN = [X, H, GAIN];
const OUTPUTS: TensorSpec[] = [
  { name: 'y', dtype: 'float32', shape: [4, null], batchAxis: 1 },
  { name: 'state', dtype: 'float32', shape: [null, 5], batchAxis: 0 },
];

function filled(shape: number[], seed: number): Float32Array {
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => seed * 1000 + i);
}

function rnnQuery(rows: number, seed: number, gain = 2): Record<string, Tensor> {
  return {
    x: arrayToTensor('float32', [4, rows, 3], filled([4, rows, 3], seed)),
    h: arrayToTensor('float32', [2, rows, 5], filled([2, rows, 5], seed + 0.5)),
    gain: arrayToTensor('float32', [], Float32Array.of(gain)),
  };
}

/**
 * A stand-in for the model: y[s, b] = gain * sum_k x[s, b, k] and state[b, j] = h[0, b, j] + h[1, b, j]:
 * each batch column's outputs depend only on its own column (and the shared gain).
 */
function fakeRnn(feeds: Record<string, Feed>): Record<string, Feed> {
  const x = feeds.x.data as Float32Array;
  const h = feeds.h.data as Float32Array;
  const gain = (feeds.gain.data as Float32Array)[0];
  const n = feeds.x.dims[1];
  const y = new Float32Array(4 * n);
  for (let s = 0; s < 4; s++) for (let b = 0; b < n; b++) for (let k = 0; k < 3; k++) y[s * n + b] += gain * x[(s * n + b) * 3 + k];
  const state = new Float32Array(n * 5);
  for (let b = 0; b < n; b++) for (let j = 0; j < 5; j++) state[b * 5 + j] = h[b * 5 + j] + h[(n + b) * 5 + j];
  return { y: { dtype: 'float32', dims: [4, n], data: y }, state: { dtype: 'float32', dims: [n, 5], data: state } };
}

const values = (t: Tensor) => Array.from(tensorToArray(t) as Float32Array);

t.test('rows are counted on each input\'s own batch axis; axis-less inputs count none', async (t) => {
  const c = checkInputs(rnnQuery(3, 1), RNN, 8);
  t.equal(c.rows, 3);
  t.same(c.axes, { x: 1, h: 1, gain: null });
  t.throws(() => checkInputs({ ...rnnQuery(3, 1), h: arrayToTensor('float32', [2, 2, 5], filled([2, 2, 5], 1)) }, RNN, 8),
    { code: 'INVALID_INPUT', message: /inputs disagree on the number of rows \(their batch axes\): x has 3, h has 2 \(dim 1\)/ });
  t.throws(() => checkInputs(rnnQuery(9, 1), RNN, 8), { code: 'INVALID_INPUT', message: /input x has 9 rows, more than this variant's max batch of 8/ });
  t.throws(() => checkInputs({ ...rnnQuery(1, 1), x: arrayToTensor('float32', [4, 0, 3], new Float32Array(0)) }, RNN, 8),
    { code: 'INVALID_INPUT', message: /input x has 0 rows \(dim 1\)/ });
  t.throws(() => checkInputs({ ...rnnQuery(1, 1), x: arrayToTensor('float32', [5, 1, 3], new Float32Array(15)) }, RNN, 8),
    { code: 'INVALID_INPUT', message: /input x dim 0 is 5, the model takes 4/ }, 'the fixed leading dim is checked, not taken for rows');
  t.throws(() => checkInputs({ ...rnnQuery(1, 1), gain: arrayToTensor('float32', [1], Float32Array.of(1)) }, RNN, 8),
    { code: 'INVALID_INPUT', message: /input gain has 1 dimensions \[1\], the model takes 0 \[\]/ });
  const whole = checkInputs({ s: arrayToTensor('float32', [3], Float32Array.of(1, 2, 3)) }, [{ name: 's', dtype: 'float32', shape: [null], batchAxis: null }], 1);
  t.equal(whole.rows, 1, 'a model with no batch axis: each query is one row, whatever its sizes');
});

for (const rowCounts of [[2], [1, 3], [2, 1, 3, 1]]) {
  t.test(`axis-1 concat and split round trip for ${rowCounts.join('+')} rows`, async (t) => {
    const parts = rowCounts.map((r, i) => checkInputs(rnnQuery(r, i + 1), RNN, 8));
    t.ok(parts.every((p) => canShareRun(parts[0], p)), 'same sizes besides the batch axis and the same gain: compatible');
    const batch = concatBatch(parts);
    const total = rowCounts.reduce((a, b) => a + b, 0);
    t.same(batch.feeds.x.dims, [4, total, 3]);
    t.same(batch.feeds.h.dims, [2, total, 5]);
    t.same(batch.feeds.gain.dims, []);
    // Column c of the batch is column c - offset of its own query, in every block of the leading dims.
    const x = batch.feeds.x.data as Float32Array;
    let offset = 0;
    parts.forEach((p) => {
      const own = p.feeds.x.data as Float32Array;
      for (let s = 0; s < 4; s++) for (let b = 0; b < p.rows; b++) {
        t.same(Array.from(x.subarray((s * total + offset + b) * 3, (s * total + offset + b + 1) * 3)), Array.from(own.subarray((s * p.rows + b) * 3, (s * p.rows + b + 1) * 3)));
      }
      offset += p.rows;
    });
    const out = splitOutputs(fakeRnn(batch.feeds), batch.rows, OUTPUTS);
    parts.forEach((p, i) => {
      const alone = splitOutputs(fakeRnn(p.feeds), [p.rows], OUTPUTS)[0];
      t.same(out[i].y.shape, [4, p.rows], `query ${i}: y split on axis 1`);
      t.same(out[i].state.shape, [p.rows, 5], `query ${i}: state split on axis 0`);
      t.same(values(out[i].y), values(alone.y), `query ${i} y equals its run alone`);
      t.same(values(out[i].state), values(alone.state), `query ${i} state equals its run alone`);
    });
  });
}

t.test('an axis-less input is shared by a batch only when every query gives the same bytes', async (t) => {
  const a = checkInputs(rnnQuery(1, 1, 2), RNN, 8);
  const b = checkInputs(rnnQuery(2, 2, 2), RNN, 8);
  const c = checkInputs(rnnQuery(1, 3, 3), RNN, 8);
  t.equal(a.key, b.key);
  t.ok(canShareRun(a, b));
  t.not(a.key, c.key, 'a different gain is a different key');
  t.notOk(canShareRun(a, c));
  t.throws(() => concatBatch([a, c]), { code: 'INVALID_INPUT', message: /cannot batch input gain: it has no batch axis and its value differs/ });
  // -0 and 0 compare equal as numbers but not as bytes: the model could tell them apart.
  t.notOk(canShareRun(checkInputs(rnnQuery(1, 4, 0), RNN, 8), checkInputs(rnnQuery(1, 5, -0), RNN, 8)), '0 and -0 are different bytes');
  const batch = concatBatch([a, b]);
  t.same(Array.from(batch.feeds.gain.data as Float32Array), [2], 'passed once');
});

t.test('queries that differ in a size besides the batch axis never share a run', async (t) => {
  const seq: TensorSpec = { name: 'x', dtype: 'float32', shape: [null, null, 3], batchAxis: 1 };
  const q = (len: number, rows: number) => checkInputs({ x: arrayToTensor('float32', [len, rows, 3], new Float32Array(len * rows * 3)) }, [seq], 8);
  t.ok(canShareRun(q(4, 1), q(4, 3)), 'same length, different rows');
  t.notOk(canShareRun(q(4, 1), q(5, 1)), 'different lengths');
  t.throws(() => concatBatch([q(4, 1), q(5, 1)]), { code: 'INVALID_INPUT', message: /differ beyond the batch axis \(dim 1\)/ });
});

t.test('an output without a batch axis goes whole to a lone query and is never shared by a batch', async (t) => {
  const specs: TensorSpec[] = [{ name: 'y', dtype: 'float32', shape: [null, 2], batchAxis: 0 }, { name: 'steps', dtype: 'int32', shape: [], batchAxis: null }];
  const run = (n: number): Record<string, Feed> => ({ y: { dtype: 'float32', dims: [n, 2], data: new Float32Array(n * 2) }, steps: { dtype: 'int32', dims: [], data: Int32Array.of(42) } });
  const [alone] = splitOutputs(run(2), [2], specs);
  t.same(alone.steps.shape, []);
  t.same(Array.from(tensorToArray(alone.steps) as Int32Array), [42]);
  t.throws(() => splitOutputs(run(3), [1, 2], specs), { code: 'INTERNAL', message: /output steps \[\] cannot be split among 2 queries: it has no batch axis/ });
  // Without specs (records before batch axes): axis 0, and a dim 0 that is not the rows total is not split either.
  t.throws(() => splitOutputs({ y: { dtype: 'float32', dims: [1, 2], data: new Float32Array(2) } }, [1, 2]),
    { code: 'INTERNAL', message: /its batch axis \(dim 0\) has 1, not the batch's 3 rows/ });
});

t.test('a model with no batch axis at all: every query runs alone', async (t) => {
  const spec: TensorSpec[] = [{ name: 's', dtype: 'float32', shape: [null], batchAxis: null }];
  const a = checkInputs({ s: arrayToTensor('float32', [2], Float32Array.of(1, 2)) }, spec, 1);
  const b = checkInputs({ s: arrayToTensor('float32', [2], Float32Array.of(1, 2)) }, spec, 1);
  t.notOk(canShareRun(a, b), 'even identical queries do not share a run');
  const queue = [a, b].map((checked) => ({ checked }));
  t.equal(pickBatch(queue, { cap: 8, maxBatch: 8, adaptive: false, shareRuns: true }).batch.length, 1);
});

t.test('warm-up inputs put the rows on each input\'s batch axis', async (t) => {
  const z = zeroInputs([...RNN, { name: 'legacy', dtype: 'int64', shape: [null, 7] }], 3);
  t.same(z.x.dims, [4, 3, 3]);
  t.same(z.h.dims, [2, 3, 5]);
  t.same(z.gain.dims, []);
  t.equal(z.gain.data.length, 1);
  t.same(z.legacy.dims, [3, 7], 'no batchAxis: axis 0');
  t.ok(z.legacy.data instanceof BigInt64Array);
});

t.test('pickBatch takes the oldest query and the compatible ones that fit, in order; the rest keep their places', async (t) => {
  const q = (rows: number, gain: number) => ({ checked: checkInputs(rnnQuery(rows, rows, gain), RNN, 8), tag: `${rows}/${gain}` });
  const queue = [q(2, 1), q(1, 9), q(3, 1), q(1, 9), q(4, 1), q(1, 1)];
  const { batch, rest } = pickBatch(queue, { cap: 8, maxBatch: 8, adaptive: false, shareRuns: true });
  t.same(batch.map((x) => x.tag), ['2/1', '3/1'], 'the 4-row query does not fit (2+3+4 > 8); the 1-row one behind it does not overtake it');
  t.same(rest.map((x) => x.tag), ['1/9', '1/9', '4/1', '1/1']);
  t.same(pickBatch(rest, { cap: 8, maxBatch: 8, adaptive: false, shareRuns: true }).batch.map((x) => x.tag), ['1/9', '1/9']);
  t.same(pickBatch(queue, { cap: 8, maxBatch: 8, adaptive: false, shareRuns: false }).batch.map((x) => x.tag), ['2/1'], 'unbatched: one query per run');
  t.same(pickBatch(queue, { cap: 1, maxBatch: 8, adaptive: true, shareRuns: true }).batch.map((x) => x.tag), ['2/1'], 'over the adaptive cap: alone rather than never');
  t.same(pickBatch(queue, { cap: 1, maxBatch: 8, adaptive: false, shareRuns: true }).batch, [], 'over a fixed cap: nothing');
});

t.test('random queues: every query gets exactly what its run alone gives', async (t) => {
  const rand = seededRandom(11);
  for (let trial = 0; trial < 10; trial++) {
    const qs = Array.from({ length: 30 }, (_, i) => ({
      id: i, checked: checkInputs(rnnQuery(1 + Math.floor(rand() * 3), trial * 100 + i, rand() < 0.7 ? 2 : 3), RNN, 8),
    }));
    let queue = [...qs];
    let runs = 0;
    let wrong = 0;
    const answered = new Set<number>();
    while (queue.length > 0) {
      const { batch, rest } = pickBatch(queue, { cap: 8, maxBatch: 8, adaptive: false, shareRuns: true });
      const merged = concatBatch(batch.map((b) => b.checked));
      const parts = splitOutputs(fakeRnn(merged.feeds), merged.rows, OUTPUTS);
      batch.forEach((b, i) => {
        const alone = splitOutputs(fakeRnn(b.checked.feeds), [b.checked.rows], OUTPUTS)[0];
        if (JSON.stringify([values(parts[i].y), values(parts[i].state)]) !== JSON.stringify([values(alone.y), values(alone.state)])) wrong++;
        answered.add(b.id);
      });
      runs++;
      queue = rest;
    }
    t.equal(answered.size, qs.length, `trial ${trial}: every query answered once`);
    t.equal(wrong, 0, `trial ${trial}: no answer differs from the query's run alone`);
    t.ok(runs < qs.length, `trial ${trial}: ${qs.length} queries in ${runs} runs`);
  }
});
