import t from 'tap';
import { decodeModel, encodeModel } from '../runtime/onnx/onnx-graph.js';
import { ort } from '../runtime/onnx/onnx-session.js';
import { quantizeDynamicInt8 } from '../runtime/onnx/quantize.js';
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

t.test('old opsets are refused with a reason', async (t) => {
  const m = decodeModel(zooModelBytes('mlp-small'));
  m.opsetImport = [{ domain: '', version: 9 }] as typeof m.opsetImport;
  t.throws(() => quantizeDynamicInt8(m), /opset 9/);
});
