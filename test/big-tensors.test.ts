// Tensors beyond the bus's max payload (8 MiB by default) travel by reference through the blobs
// Object Store bucket, both ways, without the caller seeing it: a 12 MiB image in, 12 MiB out,
// served end to end and equal to a direct ONNX Runtime run; every blob is deleted once read.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { millis, type ObjectStore } from 'nats';
import { ort } from '../runtime/onnx/onnx-session.js';
import { buildModel, encodeModel, initializer, node, onnxElemType, valueInfo } from '../runtime/onnx/onnx-graph.js';
import { arrayToTensor, encodePayload, tensorToArray } from '../runtime/bus/codec.js';
import { BLOB_TTL_MS, putTensor } from '../runtime/bus/blobs.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';
import { buckets, keys, subjects } from '../subjects/index.js';
import { kvGet } from '../runtime/bus/store.js';
import type { WorkerRecord } from '../schemas/worker.js';
import type { QueryResult } from '../schemas/query.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { rejectsWith } from './helpers/expect.js';
import { runInfaas } from './helpers/cli.js';

const C = 3;
const H = 1024;
const W = 1024;
/** One row: 3 x 1024 x 1024 float32 = 12 MiB. */
const ROW = C * H * W;

/** y = x * 2 over [N, 3, 1024, 1024]: an output as big as its input. */
function doubler(): Uint8Array {
  return encodeModel(buildModel({
    name: 'doubler',
    inputs: [valueInfo('x', onnxElemType.float32, ['N', C, H, W])],
    outputs: [valueInfo('y', onnxElemType.float32, ['N', C, H, W])],
    nodes: [node('Mul', ['x', 'two'], ['y'])],
    initializers: [initializer('two', [], Float32Array.of(2))],
  }));
}

function image(rows: number, seed: number): Float32Array {
  const a = new Float32Array(rows * ROW);
  let s = seed;
  for (let i = 0; i < a.length; i++) { s = (s * 1103515245 + 12345) % 2147483648; a[i] = s / 2147483648 - 0.5; }
  return a;
}

/** Live (not deleted) objects in a bucket. */
async function live(os: ObjectStore): Promise<string[]> {
  return (await os.list()).filter((o) => !o.deleted).map((o) => o.name);
}

/** The live blobs once the deletions under way have landed (they follow the answer), or after 5 s. */
async function untilNoBlobs(os: ObjectStore): Promise<string[]> {
  const until = Date.now() + 5000;
  for (;;) {
    const names = await live(os);
    if (names.length === 0 || Date.now() > until) return names;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

t.test('12 MiB tensors are served end to end by reference, equal to direct ONNX Runtime', async (t) => {
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [2], threads: [1], providers: ['cpu'] } });
  t.equal(sys.nc.info?.max_payload, 8 * 1024 * 1024, 'the embedded default: 8 MiB');
  const bytes = doubler();
  const object = await sys.client.upload(bytes);
  const info = await sys.client.register({
    name: 'doubler', task: 'doubling', dataset: 'synthetic', framework: 'onnx', object, submitter: 'test', declaredAccuracy: 1,
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, C, H, W] }], outputs: [{ name: 'y', dtype: 'float32', shape: [null, C, H, W] }],
  });
  await sys.client.deleteUpload(object);
  t.ok(info.variants.length > 0, 'registered with variants');
  const worker = await startTestWorker(t, sys);
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'big' });
  t.teardown(() => dispatcher.stop());
  const direct = await ort.InferenceSession.create(bytes);
  t.teardown(() => direct.release());
  const qc = new QueryClient(sys.nc);
  const slo = { latencyMs: 20_000 };

  const x = image(1, 7);
  t.ok(encodePayload({ inputs: { x: arrayToTensor('float32', [1, C, H, W], x) } }).data.length > 8 * 1024 * 1024, 'the query would not fit in one message');
  const a = await qc.query({ model: 'doubler', inputs: { x: arrayToTensor('float32', [1, C, H, W], x) }, slo }, { retryUntil: Date.now() + 20_000 });
  const want = (await direct.run({ x: new ort.Tensor('float32', x, [1, C, H, W]) })).y.data as Float32Array;
  t.same(a.outputs.y.shape, [1, C, H, W]);
  t.ok(a.outputs.y.data instanceof Uint8Array, 'raw bytes, as an inline output');
  t.ok(sameBytes(a.outputs.y.data as Uint8Array, new Uint8Array(want.buffer, want.byteOffset, want.byteLength)), 'outputs equal to direct ONNX Runtime, bit for bit');
  t.same(await live(sys.stores.blobs.os), [], 'the input and output blobs are deleted once read');

  t.test('concurrent queries of one and two rows each get their own outputs', async (t) => {
    const xs = [image(1, 11), image(2, 12), image(1, 13)];
    const answers = await Promise.all(xs.map((v) => qc.query({ model: 'doubler', inputs: { x: arrayToTensor('float32', [v.length / ROW, C, H, W], v) }, slo })));
    answers.forEach((ans, i) => {
      const got = tensorToArray(ans.outputs.y) as Float32Array;
      t.equal(got.length, xs[i].length, `query ${i}: its own rows`);
      let same = true;
      for (let k = 0; k < got.length; k += 997) if (got[k] !== xs[i][k] * 2) { same = false; break; }
      t.ok(same, `query ${i}: y = 2x`);
    });
    t.same(await live(sys.stores.blobs.os), [], 'no blob left behind');
  });

  t.test("the worker's record reports how fast it fetches inputs by reference, and the dispatcher budgets for it", async (t) => {
    // The heartbeat rewrites the record once a window; the fetches above are measured by now.
    let rate: number | undefined;
    for (let i = 0; i < 50 && rate === undefined; i++) {
      rate = (await kvGet<WorkerRecord>(sys.stores.workers, keys.worker(worker.id)))?.value.usage.blobFetchMsPerMiB;
      if (rate === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    t.ok(rate !== undefined && rate > 0, `measured: ${rate?.toFixed(2)} ms per MiB`);
    // A 2 ms objective for a 12 MiB input by reference is INFEASIBLE, and the error counts the
    // fetch in the budget (from the workers' records, which the dispatcher watches).
    const err = await rejectsWith(t, qc.query({ model: 'doubler', inputs: { x: arrayToTensor('float32', [1, C, H, W], x) }, slo: { latencyMs: 2 } }, { retry: false }), 'INFEASIBLE', 'a 2 ms objective');
    t.match(err?.message ?? '', /of which \d+(\.\d+)? ms serving path and ~\d+(\.\d)? ms fetching inputs by reference/, `the budget names the fetch: ${err?.message.slice(0, 200)}`);
    t.ok(Number(err?.details?.fetchMs) > 0, `details.fetchMs ${Number(err?.details?.fetchMs).toFixed(1)} for ${(x.byteLength / 1048576).toFixed(0)} MiB`);
  });

  t.test('an answer on a result subject comes by reference too, resolved by results()', async (t) => {
    const subject = `${subjects.resultsPrefix}big.1`;
    const got = new Promise<QueryResult>((resolve, reject) => {
      const sub = qc.results(subject, (ans) => { sub.unsubscribe(); if (ans instanceof Error) reject(ans); else resolve(ans); });
    });
    await sys.nc.flush();
    const v = image(1, 21);
    await qc.publish({ id: 'async', model: 'doubler', inputs: { x: arrayToTensor('float32', [1, C, H, W], v) }, slo, resultSubject: subject });
    const ans = await got;
    t.equal(ans.id, 'async');
    const y = tensorToArray(ans.outputs.y) as Float32Array;
    t.equal(y[12345], v[12345] * 2);
    t.same(await untilNoBlobs(sys.stores.blobs.os), [], 'the worker deletes the inputs of a published query once it has answered it; the client the output');
  });

  t.test('without the claim check, a query over the max payload is PAYLOAD_TOO_LARGE naming the limit and the way out', async (t) => {
    const err = await rejectsWith(t, qc.query({ model: 'doubler', inputs: { x: arrayToTensor('float32', [1, C, H, W], x) }, slo }, { claimCheck: false }), 'PAYLOAD_TOO_LARGE', 'claim check off');
    t.match(err?.message, /8388608 bytes per message/, 'names the limit');
    t.match(err?.message, new RegExp(`by reference through the Object Store bucket ${buckets.blobs}`), 'and the alternative');
    t.match(err?.message, /--max-payload/, 'and the other one');
    t.same(await live(sys.stores.blobs.os), [], 'nothing put');
  });

  t.test('references are checked: a missing blob, another bucket, a size that disagrees', async (t) => {
    const ref = (r: Record<string, unknown>) => ({ model: 'doubler', slo, inputs: { x: { dtype: 'float32' as const, shape: [1, C, H, W], ref: { object: 'nosuchblob', bytes: ROW * 4, ...r } } } });
    const missing = await rejectsWith(t, qc.query(ref({}) as never, { retry: false }), 'OBJECT_NOT_FOUND', 'a blob that is not there');
    t.match(missing?.message, /input x: blob "nosuchblob" is not in bucket infaas_blobs: it was deleted, or expired/);
    await rejectsWith(t, qc.query(ref({ bucket: buckets.repository }) as never, { retry: false }), 'BAD_REQUEST', 'a reference into the model repository');
    const small = await putTensor(sys.stores.blobs, arrayToTensor('float32', [2], Float32Array.of(1, 2)));
    const wrong = await rejectsWith(t, qc.query(ref({ object: small.ref.object }) as never, { retry: false }), 'INVALID_INPUT', 'a reference whose bytes disagree with the shape');
    t.match(wrong?.message, /input x: blob "\w+" holds 8 bytes, shape \[1,3,1024,1024\] of float32 needs 12582912/);
    await sys.stores.blobs.os.delete(small.ref.object);
  });

  t.test('the blobs bucket drops what nobody deleted after its TTL', async (t) => {
    const status = await sys.stores.blobs.os.status();
    t.equal(millis(status.ttl), BLOB_TTL_MS, 'a TTL of 10 minutes');
    t.match(status.description, /claim check/);
  });

  t.test('the CLI sends raw files by reference and writes the outputs', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'infaas-big-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const v = image(1, 31);
    writeFileSync(join(dir, 'x.bin'), new Uint8Array(v.buffer));
    const r = await cli(['query', '--model', 'doubler', '--latency', '20000', '--input', `x=@${join(dir, 'x.bin')}`, '--out', join(dir, 'y.bin'), '-s', sys.url]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /0\s+y\s+float32\s+\[1,3,1024,1024\]\s+-?[\d.]+\s+[\d.]+\s+-?[\d.e-]+\s+-/, 'summarised by shape (no argmax for an image), no stack overflow on 3M values');
    const y = readFileSync(join(dir, 'y.bin'));
    const want = (await direct.run({ x: new ort.Tensor('float32', v, [1, C, H, W]) })).y.data as Float32Array;
    t.ok(sameBytes(y, new Uint8Array(want.buffer, want.byteOffset, want.byteLength)), 'the output file holds the raw float32 bytes');
    const off = await cli(['query', '--model', 'doubler', '--latency', '20000', '--input', `x=@${join(dir, 'x.bin')}:float32:1x3x1024x1024`, '--no-claim-check', '-s', sys.url]);
    t.equal(off.code, 1);
    t.match(off.stderr, /error PAYLOAD_TOO_LARGE: the query is \d+ bytes: the bus takes at most 8388608 bytes/);
    t.same(await live(sys.stores.blobs.os), [], 'no blob left behind by the CLI');
  });
});

const cli = runInfaas;
