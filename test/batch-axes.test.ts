// Batch axes resolved from declarations, dimension names and the export convention; models whose
// axes cannot be established are served unbatched, with the reason naming the tensor.
import t from 'tap';
import { batchAxisOf, isBatchDimName, queryRows, resolveBatchAxes, servingSpecs } from '../runtime/onnx/batch-axes.js';
import { allowedBatches } from '../actors/profiler/plan.js';
import type { ModelSignature } from '../runtime/onnx/onnx-session.js';
import type { TensorSpec } from '../schemas/tensor.js';

type Dim = number | string;
/** A signature as modelSignature reads it: a string dim is a dimParam (dynamic, named), '' dynamic without a name. */
function sig(inputs: Record<string, Dim[]>, outputs: Record<string, Dim[]>): ModelSignature {
  const dimNames: Record<string, (string | null)[]> = {};
  const specs = (m: Record<string, Dim[]>) => Object.entries(m).map(([name, dims]): TensorSpec => {
    dimNames[name] = dims.map((d) => (typeof d === 'string' && d !== '' ? d : null));
    return { name, dtype: 'float32', shape: dims.map((d) => (typeof d === 'number' ? d : null)) };
  });
  return { inputs: specs(inputs), outputs: specs(outputs), opset: 13, dimNames };
}

const axes = (r: { inputs: TensorSpec[]; outputs: TensorSpec[] }) =>
  Object.fromEntries([...r.inputs, ...r.outputs].map((s) => [s.name, s.batchAxis]));

t.test('batch names: whole words or the short conventions, case-insensitive', async (t) => {
  for (const n of ['batch', 'Batch', 'BATCH', 'batch_size', 'batchSize', 'BatchSize', 'batch-size', 'dynamic_batch', 'input.batch', 'batches', 'N', 'n', 'B', 'bs', 'bsz', 'nbatch', 'num_batch']) {
    t.ok(isBatchDimName(n), n);
  }
  for (const n of ['p2o.DynamicDimension.0', 'seq', 'sequence_length', 'num_boxes', 'unbatched', 'batcher', 'height', 'width', 'unk__12', 'Nx', 'time', 'bsx']) {
    t.notOk(isBatchDimName(n), n);
  }
});

t.test('PaddleOCR-style exports: no batch names, every leading dim dynamic, so axis 0', async (t) => {
  const r = resolveBatchAxes(sig(
    { x: ['p2o.DynamicDimension.0', 3, 'p2o.DynamicDimension.1', 'p2o.DynamicDimension.2'] },
    { 'sigmoid_0.tmp_0': ['p2o.DynamicDimension.3', 1, 'p2o.DynamicDimension.4', 'p2o.DynamicDimension.5'] },
  ));
  t.same(r, {
    batched: true,
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3, null, null], batchAxis: 0 }],
    outputs: [{ name: 'sigmoid_0.tmp_0', dtype: 'float32', shape: [null, 1, null, null], batchAxis: 0 }],
  });
  t.same(axes(resolveBatchAxes(sig({ x: ['', 3] }, { y: ['', 10] }))), { x: 0, y: 0 }, 'unnamed dynamic leading dims too');
});

t.test('a dim named like the batch is the axis wherever it is: a recurrent state [2, batch, 5]', async (t) => {
  const r = resolveBatchAxes(sig({ x: [4, 'batch', 3], h: [2, 'batch', 5] }, { y: [4, 'batch'], h_out: [2, 'batch', 5] }));
  t.same(axes(r), { x: 1, h: 1, y: 1, h_out: 1 });
  t.equal(r.batched, true);
  t.same(axes(resolveBatchAxes(sig({ ids: ['batch_size', 'seq'] }, { logits: ['batch_size', 'seq', 100] }))), { ids: 0, logits: 0 });
  const mixed = resolveBatchAxes(sig({ ids: ['N', 'seq'] }, { pooled: ['unk__7', 16] }));
  t.same(axes(mixed), { ids: 0, pooled: 0 }, 'an unnamed output follows the convention when every known axis is 0');
});

t.test('scalars have no batch axis; an axis-less input is allowed, an axis-less output makes the model unbatched', async (t) => {
  const r = resolveBatchAxes(sig({ x: ['batch', 3], temperature: [] }, { y: ['batch', 3] }));
  t.same(axes(r), { x: 0, temperature: null, y: 0 });
  t.equal(r.batched, true);
  const out = resolveBatchAxes(sig({ x: ['batch', 3] }, { y: ['batch', 3], count: [] }));
  t.same(axes(out), { x: 0, y: 0, count: null });
  t.equal(out.batched, false);
  t.match(out.reason, /output count \[\] has no batch axis/);
  const none = resolveBatchAxes(sig({ k: [] }, { y: [] }));
  t.equal(none.batched, false);
});

t.test('a fixed leading dim with no batch name cannot be established: unbatched, naming the tensor', async (t) => {
  const r = resolveBatchAxes(sig({ x: ['batch', 3], h: [2, '', 5] }, { y: ['batch'] }));
  t.equal(r.batched, false);
  t.match(r.reason, /cannot tell the batch axis of input h \[2,\?,5\]: no dimension is named like a batch and its leading dimension is fixed at 2; declare it with batchAxes/);
  t.same(axes(r), { x: 0, h: null, y: 0 }, 'what is known is still reported');
  const fixedOut = resolveBatchAxes(sig({ x: ['', 3] }, { y: [1, 10] }));
  t.equal(fixedOut.batched, false);
  t.match(fixedOut.reason, /output y \[1,10\]/);
});

t.test('the convention is not applied where the model says otherwise', async (t) => {
  const r = resolveBatchAxes(sig({ x: [4, 'batch', 3], s: ['', 2] }, { y: [4, 'batch'] }));
  t.equal(r.batched, false, 'x batches on axis 1, so s\'s leading dim proves nothing');
  t.match(r.reason, /input s .*axes other than 0/);
  const seq = resolveBatchAxes(sig({ ids: ['batch', 'seq'] }, { per_step: ['seq', 8] }));
  t.equal(seq.batched, false);
  t.match(seq.reason, /output per_step .*leading dimension "seq" is not the batch elsewhere/);
  const two = resolveBatchAxes(sig({ pair: ['batch', 'batch'] }, { y: ['batch'] }));
  t.match(two.reason, /input pair .*several of its dimensions have batch names/);
});

t.test('a declaration wins over names and convention, and its dim name marks the batch elsewhere', async (t) => {
  const s = sig({ x: [4, 'p2o.D.0', 3], h: [2, 'p2o.D.0', 5] }, { y: [4, 'p2o.D.0'] });
  t.equal(resolveBatchAxes(s).batched, false, 'undeclared: the leading dims are fixed');
  const r = resolveBatchAxes(s, { batchAxes: { x: 1 } });
  t.same(axes(r), { x: 1, h: 1, y: 1 }, 'h and y share x\'s batch dim name');
  t.equal(r.batched, true);
  const viaSpec = resolveBatchAxes(s, { inputs: [{ name: 'x', dtype: 'float32', shape: [4, null, 3], batchAxis: 1 }, { name: 'h', dtype: 'float32', shape: [2, null, 5] }] });
  t.same(axes(viaSpec), { x: 1, h: 1, y: 1 }, 'an override spec\'s batchAxis is a declaration');
  const over = resolveBatchAxes(sig({ a: ['batch', 'n2'] }, { y: ['batch'] }), { batchAxes: { a: 1, y: 0 } });
  t.same(axes(over), { a: 1, y: 0 }, 'a declaration beats a batch name');
  const shared = resolveBatchAxes(sig({ x: ['batch', 3], mask: ['', 3] }, { y: ['batch'] }), { batchAxes: { mask: null } });
  t.same(axes(shared), { x: 0, mask: null, y: 0 });
  t.equal(shared.batched, true, 'an input declared axis-less is shared when equal');
  const mapOverSpec = resolveBatchAxes(s, { inputs: [{ name: 'x', dtype: 'float32', shape: [4, null, 3], batchAxis: 0 }, { name: 'h', dtype: 'float32', shape: [2, null, 5] }], batchAxes: { x: 1 } });
  t.equal(mapOverSpec.inputs[0].batchAxis, 1, 'batchAxes wins over a spec\'s batchAxis');
});

t.test('bad declarations are refused, saying why', async (t) => {
  const s = sig({ x: [4, 'batch', 3], k: [] }, { y: [4, 'batch'] });
  t.throws(() => resolveBatchAxes(s, { batchAxes: { z: 0 } }), { code: 'BAD_REQUEST', message: /batchAxes names z, which is neither an input nor an output of the model \(x, k, y\)/ });
  t.throws(() => resolveBatchAxes(s, { batchAxes: { x: 3 } }), { code: 'SIGNATURE_MISMATCH', message: /batch axis 3 of input x is outside its 3 dimensions \[4,\?,3\]/ });
  t.throws(() => resolveBatchAxes(s, { batchAxes: { x: 0 } }), { code: 'SIGNATURE_MISMATCH', message: /batch axis 0 of input x \[4,\?,3\] has the fixed size 4; a batch axis must be a dynamic dimension/ });
  t.throws(() => resolveBatchAxes(s, { batchAxes: { k: 0 } }), { code: 'SIGNATURE_MISMATCH', message: /a scalar has no batch axis: declare null/ });
  t.throws(() => resolveBatchAxes(s, { outputs: [{ name: 'y', dtype: 'float32', shape: [4, null], batchAxis: 0 }] }), { code: 'SIGNATURE_MISMATCH', message: /output y/ });
});

t.test('records before batch axes batch on axis 0; an unbatched model serves each query whole', async (t) => {
  t.equal(batchAxisOf({ shape: [null, 3] }), 0);
  t.equal(batchAxisOf({ shape: [] }), null);
  t.equal(batchAxisOf({ shape: [2, null], batchAxis: 1 }), 1);
  const legacy = servingSpecs({ inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: [null, 10] }] });
  t.same(legacy, {
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3], batchAxis: 0 }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [null, 10], batchAxis: 0 }],
    batchQueries: true,
  });
  t.equal(servingSpecs({ inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1, 10] }] }).batchQueries, false, 'a fixed output batch dim cannot be split');
  const un = servingSpecs({ batched: false, inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3], batchAxis: 0 }], outputs: [{ name: 'y', dtype: 'float32', shape: [10], batchAxis: null }] });
  t.equal(un.batchQueries, false);
  t.same(un.inputs.map((s) => s.batchAxis), [null], 'no rows counted: any number of rows is one query');
});

t.test('allowed batch caps follow the batch axes', async (t) => {
  const want = [1, 8, 32];
  t.same(allowedBatches({ inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3] }] }, want), want);
  t.same(allowedBatches({ inputs: [{ name: 'x', dtype: 'float32', shape: [4, null, 3], batchAxis: 1 }] }, want), want, 'a fixed leading dim is not the batch');
  t.same(allowedBatches({ inputs: [{ name: 'x', dtype: 'float32', shape: [null, 2, 3], batchAxis: 1 }] }, want), [2], 'a fixed size on the batch axis');
  t.same(allowedBatches({ inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: [4, 3], batchAxis: 0 }] }, want), [4]);
  t.same(allowedBatches({ batched: false, inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3] }] }, want), [1], 'unbatched');
  t.same(allowedBatches({ inputs: [{ name: 'k', dtype: 'float32', shape: [], batchAxis: null }] }, want), [1], 'no input has a batch axis');
  t.same(allowedBatches({ inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3] }, { name: 'k', dtype: 'float32', shape: [] }] }, want), want, 'a scalar beside a batched input');
});

t.test('a query\'s rows are counted on the batch axis its model declares', async (t) => {
  const specs: TensorSpec[] = [
    { name: 'gain', dtype: 'float32', shape: [], batchAxis: null },
    { name: 'x', dtype: 'float32', shape: [4, null, 3], batchAxis: 1 },
  ];
  t.equal(queryRows({ gain: { shape: [] }, x: { shape: [4, 3, 3] } }, specs), 3, 'a scalar first input and a fixed leading dim are not the rows');
  t.equal(queryRows({ gain: { shape: [] } }, [specs[0]]), 1, 'no batch axis: one row');
  t.equal(queryRows({ image: { shape: [5, 1, 28, 28] } }, [{ name: 'image', dtype: 'float32', shape: [null, 1, 28, 28] }]), 5, 'records before batch axes');
  t.equal(queryRows({ k: { shape: [] }, image: { shape: [2, 7] } }, []), 2, 'model unknown: the first input with a dim 0');
});
