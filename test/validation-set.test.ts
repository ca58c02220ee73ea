// Validation sets: format 2 (one sample per entry, per-sample shapes, any dtype, labels of each
// kind or none) and the legacy batched form, checked against the model and the metric.
import t from 'tap';
import type { Metric } from '../schemas/registry.js';
import type { Tensor, TensorSpec } from '../schemas/tensor.js';
import { InfaasError } from '../schemas/errors.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { encodeValidationSamples, encodeValidationSet, parseValidationSet, validationFeeds, type ValidationSetDoc } from '../runtime/validation-set.js';

const f32 = (shape: number[], fill = 0.5): Tensor => arrayToTensor('float32', shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill));
const image = (w: number) => ({ x: f32([1, 3, 8, w]) });
const cls: TensorSpec[] = [{ name: 'x', dtype: 'float32', shape: [null, 3, 8, null], batchAxis: 0 }];
const clsOut: TensorSpec[] = [{ name: 'p', dtype: 'float32', shape: [null, 2], batchAxis: 0 }];
const recOut: TensorSpec[] = [{ name: 'seq', dtype: 'float32', shape: [null, null, 4], batchAxis: 0 }];

t.test('format 2: per-sample shapes, an int64 input, a non-leading batch axis', async (t) => {
  const inputs: TensorSpec[] = [
    ...cls,
    { name: 'ids', dtype: 'int64', shape: [null, 4], batchAxis: 0 },
    { name: 'state', dtype: 'float32', shape: [2, null, 3], batchAxis: 1 },
    { name: 'scale', dtype: 'float32', shape: [], batchAxis: null },
  ];
  const sample = (w: number, label: number) => ({
    inputs: {
      ...image(w), ids: arrayToTensor('int64', [1, 4], BigInt64Array.of(1n, 2n, 3n, 4n)),
      state: f32([2, 1, 3]), scale: { dtype: 'float32' as const, shape: [], data: [2] },
    },
    label,
  });
  const doc: ValidationSetDoc = { samples: [sample(16, 0), sample(32, 1), sample(16, 1)] };
  const set = parseValidationSet(encodeValidationSamples(doc.samples), inputs, clsOut, { kind: 'top1' });
  t.equal(set.samples, 3);
  t.equal(set.labelKind, 'class');
  t.same(set.shapes, [{ x: [1, 3, 8, 16] }, { x: [1, 3, 8, 32] }], 'distinct sizes of the inputs with dynamic sizes');
  t.same(Array.from(set.items[0].inputs.ids.values as BigInt64Array), [1n, 2n, 3n, 4n]);
  const feeds = validationFeeds(set, 2);
  t.equal(feeds.length, 2);
  t.same(feeds[1].x.shape, [1, 3, 8, 32]);
  t.same(feeds[0].scale.shape, []);
  t.equal(validationFeeds(set).length, 3);
});

t.test('the legacy batched form still reads, split into samples', async (t) => {
  const bytes = encodeValidationSet({ x: f32([2, 3, 8, 4]) }, arrayToTensor('int32', [2], Int32Array.of(1, 0)));
  const set = parseValidationSet(bytes, cls, clsOut);
  t.equal(set.samples, 2);
  t.same(set.items.map((i) => i.label), [1, 0]);
  t.same(set.items[1].inputs.x.shape, [1, 3, 8, 4]);
  t.equal(set.items[1].inputs.x.values.length, 96);
});

t.test('ctc: string labels with a charset', async (t) => {
  const bytes = encodeValidationSamples([{ inputs: image(16), label: 'ab' }, { inputs: image(16), label: 'c' }], ['a', 'b', 'c']);
  const set = parseValidationSet(bytes, cls, recOut, { kind: 'ctc' });
  t.equal(set.labelKind, 'text');
  t.same(set.charset, ['a', 'b', 'c']);
});

t.test('fidelity takes a set with or without labels; without a metric only the structure is checked', async (t) => {
  const unlabelled = encodeValidationSamples([{ inputs: image(16) }]);
  t.equal(parseValidationSet(unlabelled, cls, clsOut, { kind: 'fidelity' }).labelKind, 'none');
  t.equal(parseValidationSet(unlabelled, cls, clsOut).labelKind, 'none');
  const labelled = encodeValidationSamples([{ inputs: image(16), label: 1 }]);
  t.equal(parseValidationSet(labelled, cls, clsOut, { kind: 'fidelity', agreement: 'cosine' }).samples, 1);
  const five: TensorSpec[] = [{ name: 'p', dtype: 'float32', shape: [null, 5], batchAxis: 0 }];
  t.equal(parseValidationSet(labelled, cls, five, { kind: 'top5' }).labelKind, 'class', 'top5 with 5 classes');
});

t.test('refuses what does not fit, saying why', async (t) => {
  const enc = encodeValidationSamples;
  const paddle: TensorSpec[] = [{ name: 'seq', dtype: 'float32', shape: [null, null, 5], batchAxis: 0 }];
  const cases: [string, Uint8Array, TensorSpec[], Metric | undefined, RegExp][] = [
    ['a label outside the classes', enc([{ inputs: image(16), label: 2 }]), clsOut, { kind: 'top1' }, /label 2 at sample 0 is outside 0\.\.1/],
    ['a row label outside the classes', enc([{ inputs: image(16), label: [0, 7] }]), clsOut, { kind: 'top1' }, /label 7/],
    ['a negative label', enc([{ inputs: image(16), label: -1 }]), clsOut, undefined, /whole number >= 0/],
    ['string labels for top1', enc([{ inputs: image(16), label: 'ab' }]), clsOut, { kind: 'top1' }, /string labels are for metric ctc/],
    ['no labels for top1', enc([{ inputs: image(16) }]), clsOut, { kind: 'top1' }, /no labels; top1 needs an integer class.*fidelity/],
    ['top5 with 2 classes', enc([{ inputs: image(16), label: 1 }]), clsOut, { kind: 'top5' }, /top5 needs at least 5 classes; output "p" has 2/],
    ['ctc without a charset', enc([{ inputs: image(16), label: 'ab' }]), recOut, { kind: 'ctc' }, /ctc needs the "charset"/],
    ['ctc with integer labels', enc([{ inputs: image(16), label: 1 }], ['a', 'b', 'c']), recOut, { kind: 'ctc' }, /ctc needs a string label/],
    ['a character not in the charset', enc([{ inputs: image(16), label: 'ad' }], ['a', 'b', 'c']), recOut, { kind: 'ctc' }, /"d", which is not in the charset/],
    ['a charset that does not match the classes', enc([{ inputs: image(16), label: 'a' }], ['a', 'b', 'c']), paddle, { kind: 'ctc' }, /5 classes.*3 characters.*make 4.*add " "/],
    ['a charset entry of two characters', enc([{ inputs: image(16), label: 'a' }], ['a', 'bc', 'd']), recOut, { kind: 'ctc' }, /charset entry 1 .* is not one character/],
    ['a metric output the model lacks', enc([{ inputs: image(16), label: 1 }]), clsOut, { kind: 'top1', output: 'nope' }, /output "nope", which the model does not have \(it has: p\)/],
    ['fidelity by argmax of a single value', enc([{ inputs: image(16) }]), [{ name: 'p', dtype: 'float32', shape: [null, 1] }], { kind: 'fidelity', agreement: 'argmax' }, /more than one class.*choose iou or cosine/],
    ['labelled and unlabelled samples mixed', enc([{ inputs: image(16), label: 1 }, { inputs: image(16) }]), clsOut, undefined, /sample 1 has no label but sample 0 has an integer label/],
    ['a batch axis that is not 1', enc([{ inputs: { x: f32([2, 3, 8, 16]) }, label: 1 }]), clsOut, undefined, /sample 0: input "x" has shape \[2,3,8,16\]; expected \[1,3,8,\?\] \(one sample: batch axis 0 of size 1\)/],
    ['a fixed dimension that differs', enc([{ inputs: { x: f32([1, 3, 9, 16]) }, label: 1 }]), clsOut, undefined, /has shape \[1,3,9,16\]/],
    ['an input the model lacks', enc([{ inputs: { ...image(16), y: f32([1]) }, label: 1 }]), clsOut, undefined, /"y" is not a model input/],
    ['a tensor whose bytes do not fill its shape', enc([{ inputs: { x: { dtype: 'float32', shape: [1, 3, 8, 16], data: new Uint8Array(8) } }, label: 1 }]), clsOut, undefined, /needs 1536 bytes, got 8/],
    ['a wrong dtype', enc([{ inputs: { x: arrayToTensor('float64', [1, 3, 8, 16], new Float64Array(384)) }, label: 1 }]), clsOut, undefined, /is float64, the model takes float32/],
    ['no samples', enc([]), clsOut, undefined, /no samples/],
    ['not MessagePack', new Uint8Array([0x92, 0x01]), clsOut, undefined, /not MessagePack/],
  ];
  for (const [what, bytes, outputs, metric, message] of cases) {
    try {
      parseValidationSet(bytes, cls, outputs, metric);
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.ok(err instanceof InfaasError && err.code === 'VALIDATION_SET_INVALID', `${what}: VALIDATION_SET_INVALID`);
      t.match((err as Error).message, message, what);
    }
  }
});
