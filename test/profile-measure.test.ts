// Profiling a real model (PaddleOCR's text-direction classifier, symbolic H and W) at two input
// sizes, with accuracy by fidelity to the registered file and by labels.
import t from 'tap';
import type { Metric } from '../schemas/registry.js';
import type { TensorSpec } from '../schemas/tensor.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { createSession, ort } from '../runtime/onnx/onnx-session.js';
import { decodeModel, encodeModel } from '../runtime/onnx/onnx-graph.js';
import { encodeValidationSamples, parseValidationSet, type Label } from '../runtime/validation-set.js';
import { measure, type MeasureJob, type MeasureOptions } from '../actors/profiler/profile-measure.js';
import { runProfileChild } from '../actors/profiler/profile-process.js';
import { ocrModelBytes, OCR_MODELS, syntheticTextImage } from '../zoo/ocr.js';

const inputs: TensorSpec[] = [{ name: 'x', dtype: 'float32', shape: [null, 3, null, null], batchAxis: 0 }];
const outputs: TensorSpec[] = [{ name: 'softmax_0.tmp_0', dtype: 'float32', shape: [null, 2], batchAxis: 0 }];
const options: MeasureOptions = { minRuns: 3, minTimeMs: 5, maxRuns: 10, warmupRuns: 1, warmupMs: 0 };
const small = { x: [1, 3, 48, 96] };
const large = { x: [1, 3, 48, 192] };
const cls = ocrModelBytes('cls');

function images(labels?: (w: number, image: Float32Array) => Promise<Label>) {
  return Promise.all([96, 192, 96, 192].map(async (w, i) => {
    const image = syntheticTextImage(48, w, 100 + i);
    return { inputs: { x: arrayToTensor('float32', [1, 3, 48, w], image) }, ...(labels ? { label: await labels(w, image) } : {}) };
  }));
}

function job(bytes: Uint8Array, validation: Uint8Array, metric: Metric, extra: Partial<MeasureJob> = {}): MeasureJob {
  return {
    modelBytes: bytes, referenceBytes: cls, batchSizes: [1, 2, 4], inputs, outputs, shapes: [large, small], metric, options,
    session: { graphOptimizationLevel: 'all', intraOpThreads: 1, executionProvider: 'cpu' },
    loadValidation: () => parseValidationSet(validation, inputs, outputs, metric),
    ...extra,
  };
}

t.test('two sizes ascending, latency is the largest size\'s curve, accuracy by fidelity to the reference', async (t) => {
  const validation = encodeValidationSamples(await images());
  const notes: string[] = [];
  const r = await measure(job(cls, validation, { kind: 'fidelity' }, { declaredAccuracy: 0.9 }), (_f, note) => notes.push(note));
  t.same(r.sizes!.map((s) => s.shape), [small, large], 'sizes ascending by elements');
  t.same(r.sizes!.map((s) => s.elements), [3 * 48 * 96, 3 * 48 * 192]);
  t.same(r.sizes!.map((s) => s.latency.map((p) => p.batch)), [[1, 2, 4], [1, 2, 4]]);
  t.same(r.latency, r.sizes![1].latency, 'latency is the largest size\'s curve');
  t.equal(r.accuracySource, 'fidelity');
  t.equal(r.metric, 'fidelity:argmax', 'a [batch, 2] output is compared by argmax');
  t.equal(r.validationSamples, 4);
  const f = r.fidelity!;
  t.equal(f.output, 'softmax_0.tmp_0');
  t.equal(f.samples, 4);
  t.equal(f.argmaxAgreement, 1, 'the registered file agrees with itself');
  t.ok(f.maxAbsError < 1e-4 && f.relError < 1e-4 && f.cosine > 0.9999, `max |diff| ${f.maxAbsError}, cosine ${f.cosine}`);
  t.ok(Math.abs(r.accuracy! - 0.9) < 1e-9, 'declared 0.9 x agreement 1');
  t.ok(notes.some((n) => /x 1x3x48x96: batch 1: p50/.test(n)), 'progress notes name the size');
});

t.test('labels: top1 measured; a variant file that differs from the reference also gets fidelity figures', async (t) => {
  const reference = await createSession(cls, { graphOptimizationLevel: 'basic', intraOpThreads: 1, executionProvider: 'cpu' });
  const argmax = async (w: number, image: Float32Array) => {
    const out = (await reference.run({ x: new ort.Tensor('float32', image, [1, 3, 48, w]) }))['softmax_0.tmp_0'].data as Float32Array;
    return out[1] > out[0] ? 1 : 0;
  };
  const validation = encodeValidationSamples(await images(argmax));
  await reference.release();
  const same = await measure(job(cls, validation, { kind: 'top1' }), () => {});
  t.equal(same.metric, 'top1');
  t.equal(same.accuracySource, 'measured');
  t.equal(same.accuracy, 1, 'labels are the model\'s own answers');
  t.equal(same.top5, undefined, 'no top-5 of 2 classes');
  t.equal(same.fidelity, undefined, 'the reference file itself: no fidelity run');
  const proto = decodeModel(cls);
  proto.producerName = 'a different file, same graph';
  const other = await measure(job(encodeModel(proto), validation, { kind: 'top1' }), () => {});
  t.equal(other.accuracy, 1);
  t.equal(other.fidelity?.argmaxAgreement, 1);
});

t.test('caps: batches over the input-bytes cap or the run-time cap are left out', async (t) => {
  const validation = encodeValidationSamples(await images());
  const perSample = (w: number) => 3 * 48 * w * 4;
  const bytesCapped = await measure(job(cls, validation, { kind: 'fidelity' }, { options: { ...options, maxBatchInputBytes: 2 * perSample(192) - 1 } }), () => {});
  t.same(bytesCapped.sizes!.map((s) => s.latency.map((p) => p.batch)), [[1, 2], [1]], 'batch 4 at 96 and batch 2 at 192 exceed the cap');
  t.same(bytesCapped.latency.map((p) => p.batch), [1]);
  const timeCapped = await measure(job(cls, validation, { kind: 'fidelity' }, { options: { ...options, maxRunMs: 0 } }), () => {});
  t.same(timeCapped.sizes!.map((s) => s.latency.map((p) => p.batch)), [[1], [1]], 'batch 1 is always measured');
  const unbatched = await measure(job(cls, validation, { kind: 'fidelity' }, { batched: false, shapes: undefined }), () => {});
  t.equal(unbatched.sizes, undefined, 'no shapes given: one size, no `sizes`');
  t.same(unbatched.latency.map((p) => p.batch), [1], 'an unbatched model profiles batch 1 only');
});

t.test('in a child process: results and coded errors cross the boundary', async (t) => {
  const dir = t.testdir({ 'val.msgpack': Buffer.from(encodeValidationSamples(await images())) });
  const base = {
    modelPath: OCR_MODELS.cls, referencePath: OCR_MODELS.cls, validationPath: `${dir}/val.msgpack`, batchSizes: [1, 2], inputs, outputs,
    shapes: [small], options, session: { graphOptimizationLevel: 'all' as const, intraOpThreads: 1, executionProvider: 'cpu' },
  };
  const r = await runProfileChild({ ...base, metric: { kind: 'fidelity', agreement: 'cosine' } }, () => {});
  t.equal(r.metric, 'fidelity:cosine');
  t.same(r.sizes!.map((s) => s.shape), [small]);
  await t.rejects(runProfileChild({ ...base, metric: { kind: 'top1' } }, () => {}), { code: 'VALIDATION_SET_INVALID', message: /no labels/ });
});
