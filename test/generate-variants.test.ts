import t from 'tap';
import { startProfiler } from '../actors/profiler/index.js';
import { decodeJson, encodeJson } from '../runtime/bus/codec.js';
import { kvPut, putObject } from '../runtime/bus/store.js';
import { silentLogger } from '../runtime/log.js';
import { buildModel, decodeModel, encodeModel, node, onnxElemType, valueInfo } from '../runtime/onnx/onnx-graph.js';
import { GenerateReply, type ModelRecord } from '../schemas/registry.js';
import { validate } from '../schemas/validate.js';
import { keys, subjects } from '../subjects/index.js';
import { zooInputs, zooModelBytes, zooOutputs, zooValidationSet } from '../zoo/index.js';
import { connectTest, startTestNats } from './helpers/system.js';

// The generate endpoint with a real nats-server and the real quantisers in their worker threads:
// every precision of the grid is either made or listed in `skipped` with its reason.
t.test('generation makes fp32, dynamic and static int8 or says why not', async (t) => {
  const server = await startTestNats(t);
  const { nc, stores } = await connectTest(t, server.url);
  const profiler = await startProfiler({
    nc, stores, log: silentLogger, hardwareClass: 'cpu-test', threads: 1,
    generator: { precisions: ['fp32', 'int8', 'int8-static'], optLevels: ['all'], maxBatches: [1, 8], threads: [1], providers: ['cpu'] },
  });
  t.teardown(() => profiler.stop());
  await putObject(stores.repository, 'validation/digits', zooValidationSet(40));

  // status 'generating': the profiler's watch profiles only 'profiling' and 'registered' models.
  const register = async (name: string, bytes: Uint8Array, withValidation: boolean, inputs = zooInputs, outputs = zooOutputs) => {
    await putObject(stores.repository, `models/${name}`, bytes);
    const now = Date.now();
    const record: ModelRecord = {
      name, task: 'digit-classification', dataset: 'mnist', framework: 'onnx', inputs, outputs, submitter: 'test',
      status: 'generating', object: `models/${name}`, sizeBytes: bytes.byteLength, variants: [], registrar: 'test', createdAt: now, updatedAt: now,
      ...(withValidation ? { validation: { object: 'validation/digits', samples: 40 } } : {}),
    };
    await kvPut(stores.models, keys.model(name), record);
    const reply = await nc.request(subjects.profiler.generate, encodeJson({ model: name }), { timeout: 60_000 });
    return validate(GenerateReply, decodeJson(reply.data), 'generate reply');
  };

  const full = await register('cnn', zooModelBytes('cnn-small'), true);
  t.same([...new Set(full.variants.map((v) => v.precision))], ['fp32', 'int8', 'int8-static']);
  t.same(full.variants.filter((v) => v.precision === 'int8-static').map((v) => v.optLevel), ['all', 'all'], 'static int8 at level all, batch caps 1 and 8');
  t.notOk(full.skipped, 'nothing skipped');

  const bare = await register('cnn-bare', zooModelBytes('cnn-small'), false);
  t.same([...new Set(bare.variants.map((v) => v.precision))], ['fp32', 'int8']);
  t.same(bare.skipped, [{ kind: 'int8-static', reason: 'no validation set to calibrate on' }]);

  // An opset-9 graph whose Upsample takes its scales from a computation: no int8 of either kind.
  const old = decodeModel(zooModelBytes('cnn-small'));
  old.opsetImport = [{ domain: '', version: 9 }] as typeof old.opsetImport;
  const g = old.graph!;
  const relu = g.node!.findIndex((n) => n.opType === 'Relu');
  const x = g.node![relu].output![0];
  g.node!.splice(relu + 1, 0, node('Shape', [x], ['s']), node('Cast', ['s'], ['sf'], { to: onnxElemType.float32 }), node('Div', ['sf', 'sf'], ['ones']), node('Upsample', [x, 'ones'], ['up']));
  for (const n of g.node!.slice(relu + 5)) n.input = n.input!.map((i) => (i === x ? 'up' : i));
  const blocked = await register('cnn-old', encodeModel(old), true);
  t.same([...new Set(blocked.variants.map((v) => v.precision))], ['fp32']);
  t.same(blocked.skipped?.map((s) => s.kind), ['int8', 'int8-static']);
  for (const s of blocked.skipped ?? []) t.match(s.reason, /opset 9 cannot be upgraded to 11: Upsample \(nearest mode with scales computed at run time\)/);

  // No Conv, MatMul or Gemm at all: nothing to quantise.
  const F = onnxElemType.float32;
  const weightless = buildModel({
    name: 'clip', opset: 13, inputs: [valueInfo('image', F, ['n', 1, 28, 28])], outputs: [valueInfo('logits', F, ['n', 10])],
    nodes: [node('Relu', ['image'], ['r']), node('GlobalAveragePool', ['r'], ['p']), node('Flatten', ['p'], ['f']), node('Tile', ['f', 'reps'], ['logits'])],
    initializers: [{ name: 'reps', dims: [2], dataType: onnxElemType.int64, int64Data: [1, 10] }],
  });
  const none = await register('no-weights', encodeModel(weightless), true);
  t.same(none.skipped, [
    { kind: 'int8', reason: 'no weights to quantise: the graph has no Conv, MatMul or Gemm' },
    { kind: 'int8-static', reason: 'no weights to quantise: the graph has no Conv, MatMul or Gemm' },
  ]);
});
