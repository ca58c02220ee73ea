import t from 'tap';
import { checkInputs, concatBatch, splitOutputs, type CheckedInputs, type Feed } from '../actors/instance/inputs.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import type { Tensor, TensorSpec } from '../schemas/tensor.js';

const IMAGE: TensorSpec = { name: 'image', dtype: 'float32', shape: [null, 1, 28, 28] };
const ROW = 784;

function image(rows: number, seed = 0): Tensor {
  const values = Float32Array.from({ length: rows * ROW }, (_, i) => seed + i / 1000);
  return arrayToTensor('float32', [rows, 1, 28, 28], values);
}

t.test('a well-formed query becomes fresh typed arrays and a row count', async (t) => {
  const tensor = image(2);
  const checked = checkInputs({ image: tensor }, [IMAGE], 8);
  t.equal(checked.rows, 2);
  t.same(checked.feeds.image.dims, [2, 1, 28, 28]);
  t.ok(checked.feeds.image.data instanceof Float32Array);
  t.not(checked.feeds.image.data.buffer, (tensor.data as Uint8Array).buffer, 'copied, not a view of the message');
  t.equal(checked.feeds.image.data[ROW + 1], Math.fround((ROW + 1) / 1000));
});

t.test('JSON number-array data is accepted', async (t) => {
  const checked = checkInputs({ image: { dtype: 'float32', shape: [1, 1, 28, 28], data: Array.from({ length: ROW }, (_, i) => i) } }, [IMAGE], 4);
  t.equal(checked.rows, 1);
  t.equal(checked.feeds.image.data[783], 783);
  const ids: TensorSpec = { name: 'ids', dtype: 'int64', shape: [null, 3] };
  const int64 = checkInputs({ ids: { dtype: 'int64', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] } }, [ids], 4);
  t.same(Array.from(int64.feeds.ids.data as BigInt64Array), [1n, 2n, 3n, 4n, 5n, 6n]);
});

t.test('each problem with a query is INVALID_INPUT with a message naming it', async (t) => {
  const two: TensorSpec[] = [IMAGE, { name: 'mask', dtype: 'uint8', shape: [null, 4] }];
  const cases: [string, () => unknown, RegExp][] = [
    ['missing input', () => checkInputs({}, [IMAGE], 8), /missing input image; the model takes image/],
    ['missing one of two', () => checkInputs({ image: image(1) }, two, 8), /missing input mask; the model takes image, mask/],
    ['unknown input', () => checkInputs({ image: image(1), pixels: image(1) }, [IMAGE], 8), /unknown input pixels; the model takes image/],
    ['wrong dtype', () => checkInputs({ image: { dtype: 'float64', shape: [1, 1, 28, 28], data: new Uint8Array(ROW * 8) } }, [IMAGE], 8),
      /input image is float64, the model takes float32/],
    ['wrong rank', () => checkInputs({ image: { dtype: 'float32', shape: [1, 28, 28], data: new Uint8Array(ROW * 4) } }, [IMAGE], 8),
      /input image has 3 dimensions \[1,28,28\], the model takes 4 \[\?,1,28,28\]/],
    ['fixed dim differs', () => checkInputs({ image: { dtype: 'float32', shape: [1, 1, 28, 27], data: new Uint8Array(28 * 27 * 4) } }, [IMAGE], 8),
      /input image dim 3 is 27, the model takes 28/],
    ['zero rows', () => checkInputs({ image: { dtype: 'float32', shape: [0, 1, 28, 28], data: new Uint8Array(0) } }, [IMAGE], 8),
      /input image has 0 rows/],
    ['rows over max batch', () => checkInputs({ image: image(5) }, [IMAGE], 4), /input image has 5 rows, more than this variant's max batch of 4/],
    ['bytes do not match shape', () => checkInputs({ image: { dtype: 'float32', shape: [2, 1, 28, 28], data: new Uint8Array(ROW * 4) } }, [IMAGE], 8),
      /input image: shape \[2,1,28,28\] of float32 needs 6272 bytes, got 3136/],
    ['numbers do not match shape', () => checkInputs({ image: { dtype: 'float32', shape: [1, 1, 28, 28], data: [1, 2, 3] } }, [IMAGE], 8),
      /input image: shape \[1,1,28,28\] needs 784 numbers, got 3/],
    ['rows disagree', () => checkInputs({ image: image(2), mask: { dtype: 'uint8', shape: [3, 4], data: new Uint8Array(12) } }, two, 8),
      /inputs disagree on the number of rows \(their batch axes\): image has 2, mask has 3 \(dim 0\)/],
  ];
  for (const [what, fn, message] of cases) t.throws(fn, { name: 'InfaasError', code: 'INVALID_INPUT', message }, what);
});

function checked(rows: number, seed: number): CheckedInputs {
  return checkInputs({ image: image(rows, seed) }, [IMAGE], 8);
}

/** A stand-in model: logits[r] = [sum of row r, r]. */
function fakeRun(feeds: Record<string, Feed>): Record<string, Feed> {
  const x = feeds.image.data as Float32Array;
  const n = feeds.image.dims[0];
  const logits = new Float32Array(n * 2);
  for (let r = 0; r < n; r++) {
    logits[r * 2] = x.subarray(r * ROW, (r + 1) * ROW).reduce((a, b) => a + b, 0);
    logits[r * 2 + 1] = r;
  }
  return { logits: { dtype: 'float32', dims: [n, 2], data: logits } };
}

function values(t: Tensor): number[] {
  const bytes = t.data as Uint8Array;
  const copy = bytes.slice();
  return Array.from(t.dtype === 'int32' ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer));
}

for (const rowCounts of [[3], [1, 4], [2, 1, 3]]) {
  t.test(`concat and split round trip for ${rowCounts.length} part(s) of ${rowCounts.join('+')} rows`, async (t) => {
    const parts = rowCounts.map((r, i) => checked(r, i * 10));
    const batch = concatBatch(parts);
    t.same(batch.rows, rowCounts);
    const total = rowCounts.reduce((a, b) => a + b, 0);
    t.same(batch.feeds.image.dims, [total, 1, 28, 28]);
    if (parts.length === 1) t.equal(batch.feeds.image.data, parts[0].feeds.image.data, 'a single part is passed through');
    const out = splitOutputs(fakeRun(batch.feeds), batch.rows);
    t.equal(out.length, parts.length);
    parts.forEach((p, i) => {
      const alone = splitOutputs(fakeRun(p.feeds), [p.rows])[0];
      t.same(out[i].logits.shape, [p.rows, 2]);
      const got = values(out[i].logits);
      const want = values(alone.logits);
      // The sums match; the second column is the row's index in whatever batch it ran in.
      t.same(got.filter((_, k) => k % 2 === 0), want.filter((_, k) => k % 2 === 0), `part ${i} logits`);
    });
  });
}

t.test('split parts are views of disjoint ranges of the output buffer', async (t) => {
  const out = { y: { dtype: 'float32' as const, dims: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6) } };
  const [a, b] = splitOutputs(out, [1, 2]);
  t.same(values(a.y), [1, 2]);
  t.same(values(b.y), [3, 4, 5, 6]);
  t.equal((a.y.data as Uint8Array).buffer, out.y.data.buffer);
  t.equal((b.y.data as Uint8Array).byteOffset, 8);
});

t.test('queries that differ beyond dim 0 cannot be concatenated', async (t) => {
  const seq: TensorSpec = { name: 'tokens', dtype: 'int32', shape: [null, null] };
  const a = checkInputs({ tokens: { dtype: 'int32', shape: [1, 3], data: [1, 2, 3] } }, [seq], 8);
  const b = checkInputs({ tokens: { dtype: 'int32', shape: [1, 2], data: [1, 2] } }, [seq], 8);
  t.throws(() => concatBatch([a, b]), { code: 'INVALID_INPUT', message: /cannot batch input tokens/ });
});
