import t from 'tap';
import { decodeModel, encodeModel } from '../runtime/onnx/onnx-graph.js';
import { ort } from '../runtime/onnx/onnx-session.js';
import { quantizeDynamicInt8 } from '../runtime/onnx/quantize.js';
import { quantizeStaticInt8, type CalibrationFeed } from '../runtime/onnx/quantize-static.js';
import { loadSplit } from '../zoo/data.js';
import { zooModelBytes } from '../zoo/index.js';

const samples = loadSplit('validation', 200);

async function predictions(bytes: Uint8Array): Promise<Int32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const out = (await s.run({ image: new ort.Tensor('float32', samples.images, [samples.count, 1, 28, 28]) })).logits.data as Float32Array;
  await s.release();
  return Int32Array.from({ length: samples.count }, (_, i) => {
    let best = 0;
    for (let k = 1; k < 10; k++) if (out[i * 10 + k] > out[i * 10 + best]) best = k;
    return best;
  });
}

for (const name of ['mlp-wide', 'cnn-small']) {
  t.test(`${name}: int8 is a real integer graph, a quarter the size, and agrees with fp32 on most digits`, async (t) => {
    const fp32 = zooModelBytes(name);
    const { model, report } = quantizeDynamicInt8(decodeModel(fp32));
    const int8 = encodeModel(model);
    const ops = new Set(model.graph!.node!.map((n) => n.opType));
    t.ok(ops.has('DynamicQuantizeLinear'), 'activations quantised at run time');
    t.ok(ops.has(name.startsWith('cnn') ? 'ConvInteger' : 'MatMulInteger'), 'integer kernels');
    t.notOk(ops.has('MatMul') || ops.has('Conv'), 'no float matmul/conv left');
    t.ok(report.quantizedNodes >= 2);
    t.ok(int8.byteLength < fp32.byteLength * 0.35, `int8 ${int8.byteLength} bytes vs fp32 ${fp32.byteLength}`);
    const [a, b] = [await predictions(fp32), await predictions(int8)];
    const agree = a.filter((v, i) => v === b[i]).length / a.length;
    t.ok(agree > 0.9, `top-1 agreement ${agree}`);
  });
}

t.test('an opset-9 model is upgraded to 11 and quantised', async (t) => {
  const m = decodeModel(zooModelBytes('mlp-small'));
  m.opsetImport = [{ domain: '', version: 9 }] as typeof m.opsetImport;
  const { model, report } = quantizeDynamicInt8(m);
  t.equal(report.passes?.upgradedFrom, 9);
  t.equal(Number(model.opsetImport!.find((o) => !o.domain)!.version), 11);
  t.ok(report.quantizedNodes >= 2);
});

t.test('an opset that cannot be upgraded is refused naming the op that blocks it', async (t) => {
  const m = decodeModel(zooModelBytes('cnn-small'));
  m.opsetImport = [{ domain: '', version: 9 }] as typeof m.opsetImport;
  const g = m.graph!;
  const relu = g.node!.findIndex((n) => n.opType === 'Relu');
  const x = g.node![relu].output![0];
  // An Upsample whose scales come from a Shape computation: Resize-11 cannot express its rounding.
  g.node!.splice(relu + 1, 0, { opType: 'Shape', input: [x], output: ['s'] }, { opType: 'Cast', input: ['s'], output: ['sf'], attribute: [{ name: 'to', type: 2, i: 1 }] },
    { opType: 'Div', input: ['sf', 'sf'], output: ['ones'] }, { opType: 'Upsample', input: [x, 'ones'], output: ['up'] });
  for (const n of g.node!.slice(relu + 5)) n.input = n.input!.map((i) => (i === x ? 'up' : i));
  t.throws(() => quantizeDynamicInt8(m), { name: 'QuantizeRefusedError', message: /opset 9 cannot be upgraded to 11: Upsample \(nearest mode with scales computed at run time\)/ });
});

t.test('cnn-small: static int8 calibrated on 32 digits runs as QLinearConv/QLinearMatMul and agrees with fp32', async (t) => {
  const calibration: CalibrationFeed[] = Array.from({ length: 32 }, (_, i) => ({ image: { dtype: 'float32', dims: [1, 1, 28, 28], data: samples.images.slice(i * 784, (i + 1) * 784) } }));
  const fp32 = zooModelBytes('cnn-small');
  const { model, report } = await quantizeStaticInt8(decodeModel(fp32), calibration);
  t.equal(report.quantizedNodes, 2);
  const ops = model.graph!.node!.map((n) => n.opType);
  t.ok(ops.includes('QuantizeLinear') && ops.includes('DequantizeLinear'), 'a QDQ graph');
  const [a, b] = [await predictions(fp32), await predictions(encodeModel(model))];
  const agree = a.filter((v, i) => v === b[i]).length / a.length;
  t.ok(agree > 0.95, `top-1 agreement ${agree}`);
});

t.test('static quantisation needs calibration samples', async (t) => {
  await t.rejects(quantizeStaticInt8(decodeModel(zooModelBytes('cnn-small')), []), /at least one calibration sample/);
});
