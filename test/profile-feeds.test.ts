// Profiling inputs: sizes in ascending elements, batches stacked on each input's own batch axis
// noise of the right dtype where no validation sample has the size.
import t from 'tap';
import type { TensorSpec } from '../schemas/tensor.js';
import { batchFeeds, NoisePool, profileSizes, samplesOfSize, stack } from '../actors/profiler/profile-feeds.js';

const specs: TensorSpec[] = [
  { name: 'x', dtype: 'float32', shape: [null, 3, null], batchAxis: 0 },
  { name: 'h', dtype: 'float32', shape: [2, null, 4], batchAxis: 1 },
  { name: 'ids', dtype: 'int64', shape: [null, 2], batchAxis: 0 },
  { name: 'scale', dtype: 'float32', shape: [], batchAxis: null },
];

t.test('sizes: ascending elements, every input counted, fixed inputs filled in', async (t) => {
  const sizes = profileSizes(specs, [{ x: [1, 3, 100] }, { x: [1, 3, 10] }]);
  t.same(sizes.map((s) => s.shape), [{ x: [1, 3, 10] }, { x: [1, 3, 100] }]);
  t.same(sizes[0].sample, { x: [1, 3, 10], h: [2, 1, 4], ids: [1, 2], scale: [] });
  t.equal(sizes[0].elements, 30 + 8 + 2 + 1);
  t.equal(sizes[0].bytes, 30 * 4 + 8 * 4 + 2 * 8 + 4);
  t.same(profileSizes(specs).map((s) => s.shape), [{}], 'no shapes: one size, dynamic dims at 1');
  t.throws(() => profileSizes(specs, [{ y: [1] }]), /names y, not inputs/);
  t.throws(() => profileSizes(specs, [{ x: [1, 4, 10] }]), /\[1,4,10\] of input "x" does not fit \[1,3,\?\]/);
});

t.test('stacking on a non-leading axis', async (t) => {
  // Two samples of [2, 1, 3] (batch axis 1) -> [2, 2, 3].
  const a = Float32Array.of(1, 2, 3, 4, 5, 6);
  const b = Float32Array.of(7, 8, 9, 10, 11, 12);
  const s = stack([a, b], [2, 1, 3], 1, 2);
  t.same(Array.from(s as Float32Array), [1, 2, 3, 7, 8, 9, 4, 5, 6, 10, 11, 12]);
  t.same(Array.from(stack([a], [2, 1, 3], 1, 2) as Float32Array), [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6], 'sources cycle');
});

t.test('a batch of noise or of validation samples has each input batched on its own axis', async (t) => {
  const [size] = profileSizes(specs, [{ x: [1, 3, 5] }]);
  const noise = batchFeeds(specs, size, 4, [], new NoisePool());
  t.same(Object.fromEntries(Object.entries(noise).map(([k, v]) => [k, v.dims])), { x: [4, 3, 5], h: [2, 4, 4], ids: [4, 2], scale: [] });
  t.equal(noise.ids.type, 'int64');
  t.ok((noise.x.data as Float32Array).every((v) => v >= 0 && v < 1), 'float noise in [0, 1)');
  const sample = (v: number) => ({
    x: { dtype: 'float32' as const, shape: [1, 3, 5], values: new Float32Array(15).fill(v) },
    h: { dtype: 'float32' as const, shape: [2, 1, 4], values: new Float32Array(8).fill(v) },
    ids: { dtype: 'int64' as const, shape: [1, 2], values: BigInt64Array.of(BigInt(v), BigInt(v)) },
    scale: { dtype: 'float32' as const, shape: [], values: Float32Array.of(0.5) },
  });
  const items = [{ inputs: sample(1) }, { inputs: { ...sample(2), x: { dtype: 'float32' as const, shape: [1, 3, 6], values: new Float32Array(18) } } }, { inputs: sample(3) }];
  const matching = samplesOfSize(size, items);
  t.equal(matching.length, 2, 'only samples of exactly this size');
  const feeds = batchFeeds(specs, size, 3, matching, new NoisePool());
  t.same(Array.from(feeds.ids.data as BigInt64Array), [1n, 1n, 3n, 3n, 1n, 1n]);
  t.same(Array.from((feeds.h.data as Float32Array).subarray(0, 12)), [1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1]);
});
