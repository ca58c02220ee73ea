import t from 'tap';
import { constantsToInitializers, foldBatchNorm, upgradeOpset } from '../runtime/onnx/graph-passes.js';
import {
  buildModel, decodeModel, encodeModel, initializer, node, onnxElemType, valueInfo, type ModelProto,
} from '../runtime/onnx/onnx-graph.js';
import { ort } from '../runtime/onnx/onnx-session.js';
import { seededRandom } from '../runtime/random.js';
import { ocrModelBytes } from '../zoo/ocr.js';

const F = onnxElemType.float32;

async function run(model: ModelProto | Uint8Array, x: Float32Array, dims: number[]): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeModel(model), { intraOpNumThreads: 1 });
  const out = await s.run({ x: new ort.Tensor('float32', x, dims) });
  await s.release();
  return s.outputNames.map((n) => out[n].data as Float32Array);
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  for (const [k, ak] of a.entries()) for (let i = 0; i < ak.length; i++) m = Math.max(m, Math.abs(ak[i] - b[k][i]));
  return m;
}

function randomInput(dims: number[], seed: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1);
}

for (const [which, dims] of [['cls', [1, 3, 48, 192]], ['rec', [1, 3, 48, 320]]] as const) {
  t.test(`PaddleOCR ${which} (opset 9, weights in Constant nodes) upgrades to opset 11 with the same outputs`, async (t) => {
    const bytes = ocrModelBytes(which);
    const hoisted = constantsToInitializers(decodeModel(bytes));
    t.ok(hoisted.hoisted > 200, `${hoisted.hoisted} constants became initializers`);
    t.notOk(hoisted.model.graph!.node!.some((n) => n.opType === 'Constant'), 'no Constant node left');
    const up = upgradeOpset(hoisted.model, 11);
    if (!up.ok) return t.fail(up.reason);
    t.equal(up.from, 9);
    t.ok(up.converted.Clip > 0 && up.converted.Slice > 0, `converted ${JSON.stringify(up.converted)}`);
    t.same(up.model.opsetImport!.map((o) => [o.domain, Number(o.version)]), [['', 11]]);
    const folded = foldBatchNorm(up.model);
    for (const seed of [1, 2]) {
      const x = randomInput([...dims], seed);
      const ref = await run(bytes, x, [...dims]);
      t.ok(maxAbsDiff(ref, await run(up.model, x, [...dims])) <= 1e-5, 'upgraded: equal within 1e-5');
      t.ok(maxAbsDiff(ref, await run(folded.model, x, [...dims])) <= 1e-4, `${folded.folded} BatchNormalizations folded: equal within 1e-4`);
    }
  });
}

t.test('an opset-11 model keeps its opset; hoisting its constants changes no output', async (t) => {
  const bytes = ocrModelBytes('det');
  const hoisted = constantsToInitializers(decodeModel(bytes));
  t.equal(hoisted.model.graph!.initializer!.length, hoisted.hoisted);
  const up = upgradeOpset(hoisted.model, 11);
  t.ok(up.ok && up.model === hoisted.model, 'nothing to upgrade');
  const x = randomInput([1, 3, 64, 64], 3);
  t.equal(maxAbsDiff(await run(bytes, x, [1, 3, 64, 64]), await run(hoisted.model, x, [1, 3, 64, 64])), 0);
});

/** An opset-9 graph with each op whose signature changed by 11: Clip, Slice, Pad, TopK, Upsample, Dropout. */
function opset9Graph(scalesFromInput = false): ModelProto {
  return buildModel({
    name: 'old', opset: 9,
    inputs: [valueInfo('x', F, [1, 2, 4, 6]), ...(scalesFromInput ? [valueInfo('scales', F, [4])] : [])],
    outputs: [valueInfo('y', F, [1, 2, 8, 16]), valueInfo('k', F, [1, 2, 8, 3])],
    nodes: [
      node('Clip', ['x'], ['c'], { min: { float: -0.5 }, max: { float: 0.5 } }),
      node('Slice', ['c'], ['s'], { starts: [0, 1], ends: [2, 2147483647], axes: [1, 3] }),
      node('Pad', ['s'], ['p'], { pads: [0, 0, 0, 1, 0, 0, 0, 2], value: { float: 0.25 } }),
      node('Dropout', ['p'], ['d'], { ratio: { float: 0.1 } }),
      node('Upsample', ['d', 'scales'], ['y'], { mode: 'nearest' }),
      node('TopK', ['y'], ['k', 'ki'], { axis: 3, k: 3 }),
    ],
    initializers: scalesFromInput ? [] : [initializer('scales', [4], Float32Array.of(1, 1, 2, 2))],
  });
}

t.test('opset-9 Clip, Slice, Pad, TopK, Upsample and Dropout are rewritten to their opset-11 forms', async (t) => {
  const old = opset9Graph();
  const up = upgradeOpset(old, 11);
  if (!up.ok) return t.fail(up.reason);
  t.same(up.converted, { Clip: 1, Slice: 1, Pad: 1, TopK: 1, Upsample: 1 });
  t.ok(up.model.graph!.node!.some((n) => n.opType === 'Resize'), 'Upsample became Resize');
  const x = randomInput([1, 2, 4, 6], 4);
  t.equal(maxAbsDiff(await run(old, x, [1, 2, 4, 6]), await run(up.model, x, [1, 2, 4, 6])), 0, 'same outputs in ONNX Runtime');
});

t.test('an upgrade that would change meaning is refused naming the op', async (t) => {
  const up = upgradeOpset(opset9Graph(true), 11);
  t.notOk(up.ok);
  if (!up.ok) t.match(up.reason, /opset 9 cannot be upgraded to 11: Upsample \(nearest mode with scales computed at run time\)/);
  const masked = opset9Graph();
  masked.graph!.node![3].output = ['d', 'mask'];
  masked.graph!.output!.push(valueInfo('mask', F, [1, 2, 4, 6]));
  const m = upgradeOpset(masked, 11);
  if (!m.ok) t.match(m.reason, /Dropout \(its mask output/);
  else t.fail('a read Dropout mask must block');
  const ancient = opset9Graph();
  ancient.opsetImport = [{ domain: '', version: 7 }] as typeof ancient.opsetImport;
  const a = upgradeOpset(ancient, 11);
  t.match(a.ok ? '' : a.reason, /opset 7 is too old to upgrade/);
});

t.test('a Constant with value_ints becomes an int64 initializer; one that is a graph output stays a node', async (t) => {
  const m = buildModel({
    name: 'consts', opset: 13,
    inputs: [valueInfo('x', F, [2, 3])],
    outputs: [valueInfo('y', F, [3, 2]), valueInfo('k', F, [1])],
    nodes: [
      node('Constant', [], ['shape'], { value_ints: [3, 2] }),
      { opType: 'Constant', input: [], output: ['k'], attribute: [{ name: 'value_floats', type: 6, floats: [1.5] }] },
      node('Reshape', ['x', 'shape'], ['y']),
    ],
    initializers: [],
  });
  const { model, hoisted } = constantsToInitializers(m);
  t.equal(hoisted, 1);
  t.same(model.graph!.node!.map((n) => n.opType), ['Constant', 'Reshape']);
  const out = await run(model, Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
  t.same([...out[0]], [1, 2, 3, 4, 5, 6]);
});
