import t, { type Test } from 'tap';
import { checkInputs, concatBatch, splitOutputs } from '../actors/instance/inputs.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { createSession, ort, type SessionConfig } from '../runtime/onnx/onnx-session.js';
import { ThreadedSession, type Feed } from '../runtime/onnx/threaded-session.js';
import type { Tensor } from '../schemas/tensor.js';
import { zooInputs, zooModelBytes } from '../zoo/index.js';

const CONFIG: SessionConfig = { graphOptimizationLevel: 'all', intraOpThreads: 1, executionProvider: 'cpu' };
const ROW = 784;

/** Deterministic pseudo-random pixels in [0, 1). */
function pixels(rows: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: rows * ROW }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
}

function imageFeed(rows: number, seed: number): Feed {
  return { dtype: 'float32', dims: [rows, 1, 28, 28], data: pixels(rows, seed) };
}

async function direct(session: ort.InferenceSession, x: Float32Array, rows: number): Promise<Float32Array> {
  const out = await session.run({ image: new ort.Tensor('float32', x.slice(), [rows, 1, 28, 28]) });
  return out.logits.data as Float32Array;
}

function bytesAsFloats(t: Tensor): Float32Array {
  return new Float32Array((t.data as Uint8Array).slice().buffer);
}

function closeTo(t: Test, got: Float32Array, want: Float32Array, what: string): void {
  t.equal(got.length, want.length, `${what}: length`);
  const worst = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
  t.ok(worst <= 1e-6, `${what}: largest difference ${worst}`);
}

for (const model of ['cnn-small', 'mlp-small']) {
  t.test(`${model}: the thread computes what an in-process session does`, async (t) => {
    const bytes = zooModelBytes(model);
    const threaded = await ThreadedSession.open(bytes, CONFIG);
    t.teardown(() => threaded.close());
    const local = await createSession(bytes, CONFIG);
    t.teardown(() => local.release());
    t.same(threaded.inputNames, ['image']);
    t.same(threaded.outputNames, ['logits']);
    t.ok(threaded.loadMs > 0);

    const feed = imageFeed(2, 7);
    const want = await direct(local, feed.data as Float32Array, 2);
    const { outputs, ms } = await threaded.run({ image: feed });
    t.ok(ms > 0);
    t.equal(feed.data.byteLength, 0, 'an input owning its buffer is transferred');
    t.same(outputs.logits.dims, [2, 10]);
    t.equal(outputs.logits.dtype, 'float32');
    closeTo(t, outputs.logits.data as Float32Array, want, 'batch of 2');

    // A view into a larger buffer is copied, not transferred.
    const backing = pixels(3, 9);
    const view = backing.subarray(ROW, 2 * ROW);
    const viewed = await threaded.run({ image: { dtype: 'float32', dims: [1, 1, 28, 28], data: view } });
    t.equal(view.length, ROW, 'a view is left intact');
    closeTo(t, viewed.outputs.logits.data as Float32Array, await direct(local, view, 1), 'from a view');
  });
}

t.test('a batch of three queries split back equals three single runs', async (t) => {
  const threaded = await ThreadedSession.open(zooModelBytes('cnn-small'), CONFIG);
  t.teardown(() => threaded.close());
  const rowCounts = [1, 3, 2];
  const queries = rowCounts.map((r, i) => ({ image: arrayToTensor('float32', [r, 1, 28, 28], pixels(r, 100 + i)) }));
  const batch = concatBatch(queries.map((q) => checkInputs(q, zooInputs, 8)));
  const { outputs } = await threaded.run(batch.feeds);
  const parts = splitOutputs(outputs, batch.rows);
  for (const [i, q] of queries.entries()) {
    const single = await threaded.run(checkInputs(q, zooInputs, 8).feeds);
    const alone = splitOutputs(single.outputs, [rowCounts[i]])[0];
    t.same(parts[i].logits.shape, [rowCounts[i], 10]);
    closeTo(t, bytesAsFloats(parts[i].logits), bytesAsFloats(alone.logits), `query ${i}`);
  }
});

t.test('several runs may be outstanding; each gets its own result', async (t) => {
  const threaded = await ThreadedSession.open(zooModelBytes('mlp-small'), CONFIG);
  t.teardown(() => threaded.close());
  const local = await createSession(zooModelBytes('mlp-small'), CONFIG);
  t.teardown(() => local.release());
  const inputs = [1, 2, 3, 4].map((s) => pixels(1, s));
  const results = await Promise.all(inputs.map((x) => threaded.run({ image: { dtype: 'float32', dims: [1, 1, 28, 28], data: x.slice() } })));
  for (const [i, r] of results.entries()) closeTo(t, r.outputs.logits.data as Float32Array, await direct(local, inputs[i], 1), `run ${i}`);
});

t.test('close rejects outstanding runs and later ones', async (t) => {
  const threaded = await ThreadedSession.open(zooModelBytes('cnn-small'), CONFIG);
  let exited = false;
  threaded.onExit(() => { exited = true; });
  const outstanding = [threaded.run({ image: imageFeed(8, 1) }), threaded.run({ image: imageFeed(8, 2) })]
    .map((run) => run.then(() => 'resolved', (err: unknown) => err));
  await threaded.close();
  for (const settled of await Promise.all(outstanding)) t.match(settled, { code: 'INFERENCE_FAILED', message: 'session closed' });
  await t.rejects(threaded.run({ image: imageFeed(1, 3) }), { code: 'INFERENCE_FAILED', message: 'session closed' });
  t.notOk(exited, 'close is not an unexpected exit');
});

t.test('a failed run is INFERENCE_FAILED and the session keeps serving', async (t) => {
  const threaded = await ThreadedSession.open(zooModelBytes('mlp-small'), CONFIG);
  t.teardown(() => threaded.close());
  await t.rejects(threaded.run({ wrong: imageFeed(1, 1) }), { code: 'INFERENCE_FAILED' });
  const ok = await threaded.run({ image: imageFeed(1, 1) });
  t.same(ok.outputs.logits.dims, [1, 10]);
});

t.test('corrupt model bytes are MODEL_LOAD_FAILED', async (t) => {
  const bytes = zooModelBytes('mlp-small').slice(0, 1000);
  await t.rejects(ThreadedSession.open(bytes, CONFIG), { name: 'InfaasError', code: 'MODEL_LOAD_FAILED' });
  await t.rejects(ThreadedSession.open(new Uint8Array([1, 2, 3]), CONFIG), { code: 'MODEL_LOAD_FAILED' });
  t.equal(bytes.byteLength, 1000, 'the caller\'s bytes are not detached');
  const buffer = zooModelBytes('mlp-small');
  t.ok(Buffer.isBuffer(buffer));
  const session = await ThreadedSession.open(buffer, CONFIG);
  await session.close();
  t.ok(buffer.byteLength > 1000, 'nor are a Node Buffer\'s');
});

t.test('a thread that dies rejects outstanding runs and calls onExit', async (t) => {
  const threaded = await ThreadedSession.open(zooModelBytes('cnn-small'), CONFIG);
  const exit = new Promise<Error | undefined>((resolve) => threaded.onExit(resolve));
  // Reaching past the API: a malformed message makes the thread throw and die, as a bug in it
  // would. (Terminating it from outside in the middle of a native run can abort the process.)
  threaded['worker'].postMessage(null);
  const outstanding = threaded.run({ image: imageFeed(8, 1) }).then(() => 'resolved', (err: unknown) => err);
  t.ok((await exit) instanceof Error, 'onExit gets the error');
  t.match(await outstanding, { code: 'INFERENCE_FAILED', message: /session thread died/ });
  await t.rejects(threaded.run({ image: imageFeed(1, 2) }), { code: 'INFERENCE_FAILED' });
  await threaded.close();
});
