// Real third-party models end to end: PaddleOCR's text-direction classifier, recogniser and detector
// (symbolic dimensions, opset 9 and 11, weights in Constant nodes) registered from the file alone
// plus the sizes to profile at, with synthetic text images as validation data (no labels: fidelity
// to the original model is the metric), then served, outputs equal to direct ONNX Runtime runs.
import t from 'tap';
import { ort } from '../runtime/onnx/onnx-session.js';
import { arrayToTensor, tensorToArray } from '../runtime/bus/codec.js';
import { QueryClient } from '../runtime/client/query-client.js';
import type { ModelInfo } from '../runtime/client/registry-client.js';
import type { RegisterRequest, RegistryEvent } from '../schemas/registry.js';
import { encodeValidationSamples } from '../runtime/validation-set.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { ocrModelBytes, OCR_MODELS, syntheticTextImage } from '../zoo/ocr.js';
import { rejectsWith } from './helpers/expect.js';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';

const generator = { precisions: ['fp32', 'int8'] as ('fp32' | 'int8')[], optLevels: ['all'] as const, maxBatches: [1, 4], threads: [1], providers: ['cpu'] };
const measure = { minRuns: 3, minTimeMs: 5, maxRuns: 20, warmupRuns: 1, warmupMs: 0 };

function images(h: number, widths: number[], seed: number) {
  return widths.map((w, i) => ({ inputs: { x: arrayToTensor('float32', [1, 3, h, w], syntheticTextImage(h, w, seed + i)) } }));
}

t.test('PaddleOCR cls, rec and det: registered from the file, profiled at their sizes, served as ONNX Runtime answers', async (t) => {
  const sys = await startTestSystem(t, { generator: { ...generator, optLevels: ['all'] }, measure });
  const events: RegistryEvent[] = [];
  const register = async (name: string, which: keyof typeof OCR_MODELS, extra: Partial<RegisterRequest>, samples?: ReturnType<typeof images>) => {
    const object = await sys.client.upload(ocrModelBytes(which));
    const validation = samples ? await sys.client.upload(encodeValidationSamples(samples)) : undefined;
    try {
      return await sys.client.register({
        name, task: `ocr-${which}`, dataset: 'synthetic-text', framework: 'onnx', object, submitter: 'test',
        ...(validation ? { validation: { object: validation } } : {}), ...extra,
      }, { onEvent: (e) => events.push(e) });
    } finally {
      await sys.client.deleteUpload(object);
      if (validation) await sys.client.deleteUpload(validation);
    }
  };

  t.test('a model with dynamic sizes and nothing to fix them is refused with the sizes to give', async (t) => {
    const object = await sys.client.upload(ocrModelBytes('det'));
    const err = await rejectsWith(t, sys.client.register({ name: 'det-nosize', task: 'ocr-det', dataset: 'x', framework: 'onnx', object, submitter: 'test', declaredAccuracy: 0.8 }), 'SHAPES_REQUIRED', 'det without sizes');
    t.match(err?.message, /--shape x=1x3x640x640/);
    await sys.client.deleteUpload(object);
  });

  const infos: Record<string, ModelInfo> = {};
  t.test('cls (opset 9): fidelity, int8 after the opset upgrade', async (t) => {
    const info = infos.cls = await register('ppocr-cls', 'cls', { metric: { kind: 'fidelity' } }, images(48, [192, 192, 192, 192], 10));
    t.equal(info.model.status, 'registered');
    t.same(info.model.inputs.map((i) => i.batchAxis), [0], 'batch axis read from the file');
    t.same(info.model.shapes, [{ x: [1, 3, 48, 192] }], 'profiled at the validation samples\' size');
    t.ok(info.variants.some((v) => v.precision === 'int8'), `an int8 variant (skipped: ${JSON.stringify(info.model.skipped ?? [])})`);
    for (const v of info.variants) {
      const p = v.profiles['cpu-test'];
      t.equal(p.status, 'done', v.id);
      t.equal(p.metric, 'fidelity:argmax', `${v.id} names its metric`);
      t.equal(p.accuracySource, 'fidelity');
      t.ok(p.fidelity && p.fidelity.samples === 4, `${v.id} fidelity measured on the 4 samples`);
      if (v.precision === 'fp32') t.equal(p.accuracy, 1, 'fp32 agrees with itself');
    }
  });

  t.test('rec (opset 9, sequence output): profiled at two widths', async (t) => {
    const info = infos.rec = await register('ppocr-rec', 'rec', { metric: { kind: 'fidelity' } }, [...images(48, [160, 160], 20), ...images(48, [320, 320], 30)]);
    t.same(info.model.shapes, [{ x: [1, 3, 48, 160] }, { x: [1, 3, 48, 320] }]);
    for (const v of info.variants) {
      const p = v.profiles['cpu-test'];
      t.same(p.sizes?.map((s) => s.elements), [3 * 48 * 160, 3 * 48 * 320], `${v.id}: a latency curve per width`);
      t.same(p.latency, p.sizes?.at(-1)?.latency, 'latency is the largest size\'s curve');
    }
    t.ok(info.variants.some((v) => v.precision === 'int8'), `an int8 variant (skipped: ${JSON.stringify(info.model.skipped ?? [])})`);
  });

  t.test('det (weights in Constant nodes, dense output): sizes 256 and 640, fidelity by IoU', async (t) => {
    const info = infos.det = await register('ppocr-det', 'det', {
      metric: { kind: 'fidelity', agreement: 'iou', threshold: 0.3 }, declaredAccuracy: 0.9,
      shapes: [{ x: [1, 3, 640, 640] }, { x: [1, 3, 256, 256] }],
    }, images(256, [256, 256], 40));
    t.same(info.model.shapes, [{ x: [1, 3, 256, 256] }, { x: [1, 3, 640, 640] }]);
    const int8 = info.variants.find((v) => v.precision === 'int8');
    t.ok(int8, `an int8 variant (skipped: ${JSON.stringify(info.model.skipped ?? [])})`);
    for (const v of info.variants) {
      const p = v.profiles['cpu-test'];
      t.equal(p.metric, 'fidelity:iou');
      t.ok(p.fidelity?.iou !== undefined, `${v.id}: IoU measured (${p.fidelity?.iou})`);
      t.ok(p.accuracy! <= 0.9 + 1e-9, `${v.id}: accuracy is declared x fidelity (${p.accuracy})`);
      const [small, large] = p.sizes!;
      t.ok(large.latency[0].p50Ms > small.latency[0].p50Ms, `${v.id}: 640x640 (${large.latency[0].p50Ms.toFixed(1)} ms) slower than 256x256 (${small.latency[0].p50Ms.toFixed(1)} ms)`);
    }
  });

  t.test('served outputs equal direct ONNX Runtime runs, det at 640x640 included', async (t) => {
    const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
    t.teardown(() => dispatcher.stop());
    await startTestWorker(t, sys);
    const qc = new QueryClient(sys.nc);
    const cases: [string, keyof typeof OCR_MODELS, number, number][] = [['ppocr-cls', 'cls', 48, 192], ['ppocr-rec', 'rec', 48, 320], ['ppocr-det', 'det', 256, 256], ['ppocr-det', 'det', 640, 640]];
    for (const [model, which, h, w] of cases) {
      const fp32 = infos[which].variants.find((v) => v.precision === 'fp32' && v.maxBatch === 1)!;
      const data = syntheticTextImage(h, w, 99);
      const direct = await ort.InferenceSession.create(OCR_MODELS[which], { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
      const want = await direct.run({ x: new ort.Tensor('float32', data, [1, 3, h, w]) });
      const name = direct.outputNames[0];
      let answer;
      for (let i = 0; ; i++) {
        try {
          answer = await qc.query({ variant: fp32.id, inputs: { x: arrayToTensor('float32', [1, 3, h, w], data) }, slo: { latencyMs: 5000 } });
          break;
        } catch (err) {
          if (i > 50 || !(err as { retryable?: boolean }).retryable) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      const got = answer.outputs[name];
      t.same(got.shape, want[name].dims, `${model} ${h}x${w}: output shape`);
      const a = tensorToArray(got) as Float32Array;
      const b = want[name].data as Float32Array;
      let maxDiff = 0;
      for (let i = 0; i < b.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      t.ok(maxDiff < 1e-4, `${model} ${h}x${w}: served output equals direct ONNX Runtime (max |diff| ${maxDiff.toExponential(2)})`);
      await direct.release();
    }
  });
});
