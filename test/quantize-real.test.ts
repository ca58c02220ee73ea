import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { decodeModel, encodeModel } from '../runtime/onnx/onnx-graph.js';
import { ort } from '../runtime/onnx/onnx-session.js';
import { quantizeDynamicInt8 } from '../runtime/onnx/quantize.js';
import { quantizeStaticInt8, type CalibrationFeed } from '../runtime/onnx/quantize-static.js';
import { ocrModelBytes, syntheticTextImage } from '../zoo/ocr.js';

// PaddleOCR's exports as npm ships them: cls and rec at opset 9, det with every weight in a Constant
// node. Fidelity to fp32 on synthetic text images (fixed seeds); the floors sit about 0.1 below what
// 20-60 images measured (argmax agreement cls 0.95 dynamic / 1.0 static, rec 0.94 per time step;
// det IoU of the maps at 0.3: 0.90 dynamic, 0.74 static at 256x256).
const SIZES = { cls: [48, 192], rec: [48, 320], det: [256, 256] } as const;
type Which = keyof typeof SIZES;

const open = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, logSeverityLevel: 3 });

function image(which: Which, seed: number): ort.Tensor {
  const [h, w] = SIZES[which];
  return new ort.Tensor('float32', syntheticTextImage(h, w, seed), [1, 3, h, w]);
}

function argmaxRows(d: Float32Array, classes: number): Int32Array {
  return Int32Array.from({ length: d.length / classes }, (_, r) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (d[r * classes + c] > d[r * classes + best]) best = c;
    return best;
  });
}

/** cls/rec: share of rows (rec: time steps) whose argmax agrees; det: IoU of the maps thresholded at 0.3. */
async function fidelity(which: Which, fp32: Uint8Array, int8: Uint8Array, images: number): Promise<number> {
  const [a, b] = [await open(fp32), await open(int8)];
  let agree = 0, rows = 0, inter = 0, union = 0;
  for (let seed = 0; seed < images; seed++) {
    const feeds = { x: image(which, 500 + seed) };
    const [ra, rb] = [(await a.run(feeds))[a.outputNames[0]], (await b.run(feeds))[b.outputNames[0]]];
    const [da, db] = [ra.data as Float32Array, rb.data as Float32Array];
    if (which === 'det') {
      for (let i = 0; i < da.length; i++) { const p = da[i] > 0.3, q = db[i] > 0.3; if (p && q) inter++; if (p || q) union++; }
    } else {
      const classes = ra.dims[ra.dims.length - 1];
      const [ia, ib] = [argmaxRows(da, classes), argmaxRows(db, classes)];
      rows += ia.length;
      agree += ia.filter((v, i) => v === ib[i]).length;
    }
  }
  await a.release();
  await b.release();
  return which === 'det' ? inter / union : agree / rows;
}

/** The op types ONNX Runtime runs after its level-'all' rewrites. */
async function optimisedOps(bytes: Uint8Array): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'infaas-qdq-'));
  try {
    const path = join(dir, 'optimised.onnx');
    const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, optimizedModelFilePath: path, logSeverityLevel: 3 });
    await s.release();
    const ops = new Map<string, number>();
    for (const n of decodeModel(readFileSync(path)).graph!.node!) ops.set(n.opType!, (ops.get(n.opType!) ?? 0) + 1);
    return ops;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const minimum = {
  int8: { cls: 0.85, rec: 0.85, det: 0.65 },
  'int8-static': { cls: 0.85, rec: 0.85, det: 0.6 },
} as const;

for (const which of ['cls', 'rec', 'det'] as const) {
  t.test(`PaddleOCR ${which}: dynamic int8 quantises its weights and stays close to fp32`, async (t) => {
    const fp32 = ocrModelBytes(which);
    const { model, report } = quantizeDynamicInt8(decodeModel(fp32));
    t.ok(report.passes!.hoistedConstants > 0, `${report.passes!.hoistedConstants} Constant nodes became initializers`);
    if (which !== 'det') t.equal(report.passes!.upgradedFrom, 9, `upgraded from opset 9 (${JSON.stringify(report.passes!.converted)})`);
    const convs = decodeModel(fp32).graph!.node!.filter((n) => n.opType === 'Conv').length;
    t.ok(report.quantizedNodes >= convs, `${report.quantizedNodes} nodes quantised (${convs} Conv)`);
    if (which === 'det') t.ok(report.skippedNodes.every((s) => /ConvTranspose/.test(s.reason)), 'only ConvTranspose keeps float weights');
    const agreement = await fidelity(which, fp32, encodeModel(model), which === 'cls' ? 24 : 6);
    t.ok(agreement >= minimum.int8[which], `${which === 'det' ? 'IoU@0.3' : 'argmax agreement'} ${agreement.toFixed(3)}`);
  });
}

for (const which of ['cls', 'det'] as const) {
  t.test(`PaddleOCR ${which}: static int8 calibrated on sample images runs as QLinearConv and stays close to fp32`, async (t) => {
    const fp32 = ocrModelBytes(which);
    const [h, w] = SIZES[which];
    const calibration: CalibrationFeed[] = Array.from({ length: 8 }, (_, i) => ({ x: { dtype: 'float32', dims: [1, 3, h, w], data: syntheticTextImage(h, w, 100 + i) } }));
    const { model, report } = await quantizeStaticInt8(decodeModel(fp32), calibration);
    t.equal(report.calibrationSamples, 8);
    const convs = decodeModel(fp32).graph!.node!.filter((n) => n.opType === 'Conv').length;
    t.ok(report.quantizedNodes >= convs, `${report.quantizedNodes} nodes quantised, ${report.calibratedTensors} activations calibrated`);
    const bytes = encodeModel(model);
    const ops = await optimisedOps(bytes);
    t.equal(ops.get('QLinearConv'), convs, `ORT fused every Conv into QLinearConv (${ops.get('QLinearConv')})`);
    t.notOk(ops.has('Conv') || ops.has('FusedConv'), 'no float Conv left');
    const agreement = await fidelity(which, fp32, bytes, which === 'cls' ? 24 : 6);
    t.ok(agreement >= minimum['int8-static'][which], `${which === 'det' ? 'IoU@0.3' : 'argmax agreement'} ${agreement.toFixed(3)}`);
  });
}
