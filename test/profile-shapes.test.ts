import t from 'tap';
import { pickShapes, resolveProfileShapes, shapeElements } from '../actors/registrar/shapes.js';
import { InfaasError } from '../schemas/errors.js';
import type { TensorSpec } from '../schemas/tensor.js';

const det: TensorSpec[] = [{ name: 'x', dtype: 'float32', shape: [null, 3, null, null], batchAxis: 0 }];
const names = { x: [null, null, 'p2o.DynamicDimension.1', 'p2o.DynamicDimension.2'] };

t.test('fixed inputs need no sizes', async (t) => {
  t.equal(resolveProfileShapes([{ name: 'i', dtype: 'float32', shape: [null, 784] }], undefined, undefined), undefined);
  t.equal(resolveProfileShapes([{ name: 'i', dtype: 'float32', shape: [null, 784] }], [{ i: [1, 784] }], undefined), undefined, 'given sizes of a fixed model are checked, then not needed');
});

t.test('dynamic sizes without anything to fix them: SHAPES_REQUIRED naming the dims and the flag', async (t) => {
  try {
    resolveProfileShapes(det, undefined, undefined, names);
    t.fail('expected SHAPES_REQUIRED');
  } catch (err) {
    t.ok(err instanceof InfaasError);
    t.equal((err as InfaasError).code, 'SHAPES_REQUIRED');
    t.match((err as Error).message, /"x" \[\?,3,\?,\?\] \(dims 2, 3: p2o\.DynamicDimension\.1, p2o\.DynamicDimension\.2\)/);
    t.match((err as Error).message, /--shape x=1x3x640x640/);
  }
});

t.test('given sizes: completed, batch axis forced to 1, sorted by elements', async (t) => {
  const s = resolveProfileShapes(det, [{ x: [1, 3, 640, 640] }, { x: [4, 3, 256, 256] }], undefined)!;
  t.same(s, [{ x: [1, 3, 256, 256] }, { x: [1, 3, 640, 640] }]);
  t.equal(shapeElements(s[1], det), 3 * 640 * 640);
  const two: TensorSpec[] = [...det, { name: 'scale', dtype: 'float32', shape: [null, 2], batchAxis: 0 }];
  t.same(resolveProfileShapes(two, [{ x: [1, 3, 32, 32] }], undefined), [{ x: [1, 3, 32, 32], scale: [1, 2] }], 'fixed inputs filled in');
});

t.test('given sizes that contradict the model are BAD_REQUEST with the reason', async (t) => {
  const cases: [unknown, RegExp][] = [
    [[{ y: [1, 3, 8, 8] }], /"y", which is not a model input/],
    [[{ x: [1, 3, 8] }], /3 dimensions \[1,3,8\]; it has 4/],
    [[{ x: [1, 4, 8, 8] }], /size 4 at dim 1; the model fixes it at 3/],
    [[{}], /does not give input "x"/],
  ];
  for (const [given, msg] of cases) {
    t.throws(() => resolveProfileShapes(det, given as never, undefined), msg);
  }
});

t.test('a non-leading batch axis is the one set to 1', async (t) => {
  const rnn: TensorSpec[] = [{ name: 'h', dtype: 'float32', shape: [2, null, null], batchAxis: 1 }];
  t.same(resolveProfileShapes(rnn, [{ h: [2, 7, 128] }], undefined), [{ h: [2, 1, 128] }]);
  t.equal(shapeElements({ h: [2, 1, 128] }, rnn), 256);
});

t.test('sizes from the validation set: distinct, at most four, smallest and largest kept', async (t) => {
  const sample = (w: number) => ({ x: [1, 3, 48, w] });
  const got = resolveProfileShapes(det, undefined, [sample(96), sample(96), sample(320), sample(160), sample(128), sample(200), sample(256)])!;
  t.equal(got.length, 4);
  t.same(got[0], sample(96));
  t.same(got[3], sample(320));
  t.same(pickShapes([sample(5), sample(3)], det), [sample(3), sample(5)]);
});
