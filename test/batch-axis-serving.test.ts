// A model batched on a non-leading axis (x [4, batch, 3], a recurrent state h [2, batch, 5]) with a
// scalar input served by a real worker: concurrent queries share runs, and every answer equals a
// direct ONNX Runtime run of that query alone.
import t from 'tap';
import { modelSignature, ort, parseModel } from '../runtime/onnx/onnx-session.js';
import { buildModel, encodeModel, initializer, int64Initializer, node, onnxElemType, valueInfo } from '../runtime/onnx/onnx-graph.js';
import { resolveBatchAxes } from '../runtime/onnx/batch-axes.js';
import { kvPut, putObject } from '../runtime/bus/store.js';
import { WorkerClient } from '../runtime/client/worker-client.js';
import { arrayToTensor, tensorToArray } from '../runtime/bus/codec.js';
import { seededRandom } from '../runtime/random.js';
import { keys, objects } from '../subjects/index.js';
import type { ModelRecord, VariantRecord } from '../schemas/registry.js';
import { connectTest, startTestNats, startTestSystem, startTestWorker } from './helpers/system.js';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { silentLogger } from '../runtime/log.js';
import { rejectsWith } from './helpers/expect.js';

const F = onnxElemType.float32;

/**
 * y[s, b] = gain * sum_k (x[s, b, :] W)[k] and h_out[i, b, j] = tanh(h[i, b, j] + sum_{s,k} x[s, b, k]):
 * every batch column's outputs depend only on its own column and the shared gain.
 */
function rnnLikeModel(): Uint8Array {
  const w = Float32Array.from({ length: 9 }, (_, i) => (i % 4 === 0 ? 1 : 0.1 * (i + 1)));
  return encodeModel(buildModel({
    name: 'batch-axis-1',
    inputs: [valueInfo('x', F, [4, 'batch', 3]), valueInfo('h', F, [2, 'batch', 5]), valueInfo('gain', F, [])],
    outputs: [valueInfo('y', F, [4, 'batch']), valueInfo('h_out', F, [2, 'batch', 5])],
    initializers: [initializer('W', [3, 3], w), int64Initializer('last', [2]), int64Initializer('seq_and_last', [0, 2])],
    nodes: [
      node('MatMul', ['x', 'W'], ['xw']),
      node('Mul', ['xw', 'gain'], ['xg']),
      node('ReduceSum', ['xg', 'last'], ['y'], { keepdims: 0 }),
      node('ReduceSum', ['x', 'seq_and_last'], ['xs'], { keepdims: 1 }),
      node('Add', ['h', 'xs'], ['hs']),
      node('Tanh', ['hs'], ['h_out']),
    ],
  }));
}

function values(n: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
}

t.test('concurrent queries to a model batched on axis 1 each get their own correct outputs', async (t) => {
  const server = await startTestNats(t);
  const { nc, stores } = await connectTest(t, server.url);
  const bytes = rnnLikeModel();
  const axes = resolveBatchAxes(modelSignature(parseModel(bytes)));
  t.equal(axes.batched, true, axes.reason ?? 'batched');
  t.same(axes.inputs.map((s) => s.batchAxis), [1, 1, null], 'x and h on axis 1, the scalar gain on none');
  t.same(axes.outputs.map((s) => s.batchAxis), [1, 1]);

  const now = Date.now();
  const object = objects.model('rnnlike');
  await putObject(stores.repository, object, bytes);
  const model: ModelRecord = {
    name: 'rnnlike', task: 'sequence-test', dataset: 'synthetic', framework: 'onnx', inputs: axes.inputs, outputs: axes.outputs,
    submitter: 'test', status: 'registered', object, sizeBytes: bytes.length, batched: true,
    variants: ['rnnlike.fp32-all-b8-t1-cpu'], registrar: 'test', createdAt: now, updatedAt: now,
  };
  const variant: VariantRecord = {
    id: 'rnnlike.fp32-all-b8-t1-cpu', model: 'rnnlike', task: 'sequence-test', precision: 'fp32', optLevel: 'all', maxBatch: 8,
    intraOpThreads: 1, executionProvider: 'cpu', object, sizeBytes: bytes.length, createdAt: now,
  };
  await kvPut(stores.models, keys.model('rnnlike'), model);
  await kvPut(stores.variants, variant.id, variant);

  const worker = await startTestWorker(t, { nc, stores });
  const wc = new WorkerClient(nc);
  const loaded = await wc.load(worker.id, variant.id);
  t.equal(loaded.state, 'active');
  const inst = worker.instances.get(loaded.id)!;
  const direct = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  t.teardown(() => direct.release());

  const rand = seededRandom(7);
  const queries = Array.from({ length: 120 }, (_, i) => {
    const rows = 1 + Math.floor(rand() * 3);
    // Most queries share one gain; the rest may only batch among themselves.
    return { rows, x: values(4 * rows * 3, rand), h: values(2 * rows * 5, rand), gain: i % 5 === 4 ? 0.5 : 2 };
  });
  const before = inst.batchesRun;
  const answers = await Promise.all(queries.map((q, i) => wc.infer(worker.id, {
    id: `q${i}`, variant: variant.id,
    inputs: {
      x: arrayToTensor('float32', [4, q.rows, 3], q.x),
      h: arrayToTensor('float32', [2, q.rows, 5], q.h),
      gain: arrayToTensor('float32', [], Float32Array.of(q.gain)),
    },
  }, { deadlineMs: 20_000 }).catch((err: Error) => err)));
  const batches = inst.batchesRun - before;
  const failed = answers.filter((a) => a instanceof Error);
  t.equal(failed.length, 0, failed.length ? `${failed.length} failed, e.g. ${(failed[0] as Error).message}` : 'every query answered');
  t.ok(batches < queries.length, `${queries.length} queries ran in ${batches} runs`);

  let wrong = 0;
  let maxDiff = 0;
  for (const [i, q] of queries.entries()) {
    const a = answers[i];
    if (a instanceof Error) continue;
    const want = await direct.run({
      x: new ort.Tensor('float32', q.x, [4, q.rows, 3]), h: new ort.Tensor('float32', q.h, [2, q.rows, 5]), gain: new ort.Tensor('float32', Float32Array.of(q.gain), []),
    });
    const ok = a.id === `q${i}`
      && JSON.stringify(a.outputs.y.shape) === JSON.stringify([4, q.rows])
      && JSON.stringify(a.outputs.h_out.shape) === JSON.stringify([2, q.rows, 5]);
    for (const name of ['y', 'h_out'] as const) {
      const got = tensorToArray(a.outputs[name]) as Float32Array;
      const exp = want[name].data as Float32Array;
      if (got.length !== exp.length) { wrong++; continue; }
      for (let k = 0; k < got.length; k++) maxDiff = Math.max(maxDiff, Math.abs(got[k] - exp[k]));
    }
    if (!ok) wrong++;
  }
  t.equal(wrong, 0, 'every answer has its own id and shapes');
  t.ok(maxDiff < 1e-5, `every answer equals its query run alone by direct ONNX Runtime (max |diff| ${maxDiff.toExponential(2)})`);

  await rejectsWith(t, wc.infer(worker.id, {
    variant: variant.id,
    inputs: { x: arrayToTensor('float32', [4, 2, 3], new Float32Array(24)), h: arrayToTensor('float32', [2, 3, 5], new Float32Array(30)), gain: arrayToTensor('float32', [], Float32Array.of(1)) },
  }), 'INVALID_INPUT', 'x and h disagree on their rows (axis 1)');
});

t.test('registered through the registrar and queried through the dispatcher: axes from the file, rows on axis 1, own answers', async (t) => {
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [8], threads: [1], providers: ['cpu'] } });
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  await startTestWorker(t, sys);
  const bytes = rnnLikeModel();
  const object = await sys.client.upload(bytes);
  const info = await sys.client.register({ name: 'rnnlike', task: 'sequence-test', dataset: 'synthetic', framework: 'onnx', object, submitter: 'test', declaredAccuracy: 0.9 });
  await sys.client.deleteUpload(object);
  t.same(info.model.inputs.map((s) => [s.name, s.batchAxis]), [['x', 1], ['h', 1], ['gain', null]], 'batch axes read from the file');
  t.same(info.model.outputs.map((s) => [s.name, s.batchAxis]), [['y', 1], ['h_out', 1]]);
  t.equal(info.model.batched, true);

  const direct = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  t.teardown(() => direct.release());
  const qc = new QueryClient(sys.nc);
  const rand = seededRandom(11);
  const queries = Array.from({ length: 60 }, () => {
    const rows = 1 + Math.floor(rand() * 3);
    return { rows, x: values(4 * rows * 3, rand), h: values(2 * rows * 5, rand), gain: 2 };
  });
  const answers = await Promise.all(queries.map((q) => qc.query({
    model: 'rnnlike', slo: { latencyMs: 10_000 },
    inputs: { x: arrayToTensor('float32', [4, q.rows, 3], q.x), h: arrayToTensor('float32', [2, q.rows, 5], q.h), gain: arrayToTensor('float32', [], Float32Array.of(q.gain)) },
  }, { retryUntil: Date.now() + 30_000 }).catch((err: Error) => err)));
  const failed = answers.filter((a) => a instanceof Error);
  t.equal(failed.length, 0, failed.length ? `${failed.length} failed, e.g. ${(failed[0] as Error).message}` : 'every query answered');
  let maxDiff = 0;
  let wrongShape = 0;
  for (const [i, q] of queries.entries()) {
    const a = answers[i];
    if (a instanceof Error) continue;
    const want = await direct.run({ x: new ort.Tensor('float32', q.x, [4, q.rows, 3]), h: new ort.Tensor('float32', q.h, [2, q.rows, 5]), gain: new ort.Tensor('float32', Float32Array.of(q.gain), []) });
    if (JSON.stringify(a.outputs.y.shape) !== JSON.stringify([4, q.rows])) wrongShape++;
    for (const name of ['y', 'h_out'] as const) {
      const got = tensorToArray(a.outputs[name]) as Float32Array;
      const exp = want[name].data as Float32Array;
      if (got.length !== exp.length) { wrongShape++; continue; }
      for (let k = 0; k < got.length; k++) maxDiff = Math.max(maxDiff, Math.abs(got[k] - exp[k]));
    }
  }
  t.equal(wrongShape, 0, 'every answer has its own rows');
  t.ok(maxDiff < 1e-5, `every answer equals its query run alone (max |diff| ${maxDiff.toExponential(2)})`);
});
