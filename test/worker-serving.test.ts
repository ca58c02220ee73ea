// A worker joins the cluster, loads a variant and serves batched queries with correct per-query
// outputs, straight to the caller or to a result subject; deadlines and bad input get specific errors.
import t from 'tap';
import { ort } from '../runtime/onnx/onnx-session.js';
import { objectBytes, kvGet } from '../runtime/bus/store.js';
import { pingInstances } from '../runtime/bus/service.js';
import { WorkerClient, answerOf } from '../runtime/client/worker-client.js';
import { encodePayload, arrayToTensor, tensorToArray } from '../runtime/bus/codec.js';
import { keys, headerNames, services, subjects } from '../subjects/index.js';
import type { WorkerRecord, InstanceRecord } from '../schemas/worker.js';
import type { QueryResult } from '../schemas/query.js';
import { entryValue } from '../runtime/bus/store.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';
import { rejectsWith } from './helpers/expect.js';

function image(rows: number, seed: number): Float32Array {
  const a = new Float32Array(rows * 784);
  let s = seed;
  for (let i = 0; i < a.length; i++) { s = (s * 1103515245 + 12345) % 2147483648; a[i] = (s / 2147483648); }
  return a;
}


t.test('a worker registers, loads a variant and serves batched queries', async (t) => {
  const sys = await startTestSystem(t);
  const info = await registerZooModel(sys.client, 'cnn-small');
  const variant = info.variants.find((v) => v.precision === 'fp32' && v.maxBatch === 8)!;
  const other = info.variants.find((v) => v.precision === 'int8' && v.maxBatch === 8)!;

  const recordSeen = new Promise<WorkerRecord[]>((resolve) => {
    const seen: WorkerRecord[] = [];
    void sys.stores.workers.watch({ key: '>' }).then(async (w) => {
      for await (const e of w) {
        const r = entryValue<WorkerRecord>(e);
        if (r) seen.push(r);
        if (seen.length >= 3) { w.stop(); resolve(seen); }
      }
    });
  });
  const worker = await startTestWorker(t, sys, { monitor: { windowMs: 200 } });
  const wc = new WorkerClient(sys.nc);

  t.test('advertises itself in KV with a heartbeat and as a micro service', async (t) => {
    const seen = await recordSeen;
    t.equal(seen[0].id, worker.id);
    t.equal(seen[0].hardwareClass, 'cpu-test');
    t.equal(seen[0].capacity.threads, 2);
    t.ok(seen[0].pricePerHour > 0, 'has a price');
    t.ok(seen[2].heartbeatAt > seen[0].heartbeatAt, 'heartbeat advances');
    const ping = await pingInstances(sys.nc, services.worker);
    t.ok(ping.some((p) => p.metadata.workerId === worker.id), 'answers micro PING');
  });

  const loaded = await wc.load(worker.id, variant.id);
  t.equal(loaded.state, 'active', 'load replies once the instance is active');
  t.equal(loaded.variant, variant.id);

  const bytes = await objectBytes(sys.stores.repository, variant.object);
  const direct = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: variant.optLevel, intraOpNumThreads: 1 });
  t.teardown(() => direct.release());

  t.test('concurrent queries are batched and each gets its own rows back (checked against direct ONNX Runtime)', async (t) => {
    const rows = [1, 2, 1, 3, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1];
    const before = worker.instances.get(loaded.id)!.batchesRun;
    const answers = await Promise.all(rows.map((n, i) => wc.infer(worker.id, {
      id: `q${i}`, variant: variant.id, inputs: { image: arrayToTensor('float32', [n, 1, 28, 28], image(n, i + 1)) },
    }, { deadlineMs: 5000 })));
    const batches = worker.instances.get(loaded.id)!.batchesRun - before;
    t.ok(batches < rows.length, `${rows.length} queries ran in ${batches} batches`);
    for (const [i, a] of answers.entries()) {
      t.equal(a.id, `q${i}`);
      t.equal(a.variant, variant.id);
      t.equal(a.worker, worker.id);
      t.equal(a.hardwareClass, 'cpu-test');
      t.ok(a.cost > 0 && a.timings.inferenceMs > 0 && a.timings.totalMs >= a.timings.queueMs, 'cost and timings');
      t.same(a.outputs.logits.shape, [rows[i], 10]);
      const want = (await direct.run({ image: new ort.Tensor('float32', image(rows[i], i + 1), [rows[i], 1, 28, 28]) })).logits.data as Float32Array;
      const got = tensorToArray(a.outputs.logits) as Float32Array;
      const maxDiff = Math.max(...Array.from(got, (v, k) => Math.abs(v - want[k])));
      t.ok(maxDiff < 1e-4, `q${i}: max |diff| ${maxDiff.toExponential(2)} vs direct ORT`);
    }
  });

  t.test('JSON queries get JSON answers', async (t) => {
    const a = await wc.infer(worker.id, { variant: variant.id, inputs: { image: { dtype: 'float32', shape: [1, 1, 28, 28], data: Array.from(image(1, 7)) } } }, { json: true });
    t.same(a.outputs.logits.shape, [1, 10]);
    t.ok(Array.isArray(a.outputs.logits.data), 'numbers in JSON');
    const want = (await direct.run({ image: new ort.Tensor('float32', image(1, 7), [1, 1, 28, 28]) })).logits.data as Float32Array;
    const got = a.outputs.logits.data as number[];
    t.equal(got.length, 10, 'ten logits, not forty bytes');
    t.ok(got.every((v, k) => Math.abs(v - want[k]) < 1e-4), 'the same logits as direct ONNX Runtime');
  });

  t.test('a result subject receives the answer instead of a reply', async (t) => {
    const sub = sys.nc.subscribe('infaas.results.test-1', { max: 1 });
    const enc = encodePayload({ id: 'async-1', variant: variant.id, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], image(1, 3)) }, resultSubject: 'infaas.results.test-1' });
    sys.nc.publish(subjects.worker.infer(worker.id), enc.data, { headers: enc.headers });
    for await (const m of sub) {
      const r = answerOf<QueryResult>(m.data, m.headers, false);
      t.equal(r.id, 'async-1');
      t.same(r.outputs.logits.shape, [1, 10]);
    }
  });

  t.test('a query past its deadline gets DEADLINE_EXCEEDED and is never computed', async (t) => {
    const inst = worker.instances.get(loaded.id)!;
    const before = inst.batchesRun;
    const q = { variant: variant.id, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], image(1, 9)) } };
    await rejectsWith(t, wc.infer(worker.id, q, { deadline: Date.now() - 5, timeoutMs: 2000 }), 'DEADLINE_EXCEEDED', 'deadline already passed');
    t.equal(inst.batchesRun, before, 'no batch ran');
  });

  t.test('bad input gets a specific error and the worker keeps serving', async (t) => {
    const img = arrayToTensor('float32', [1, 1, 28, 28], image(1, 11));
    await rejectsWith(t, wc.infer(worker.id, { variant: 'nosuch.model', inputs: { image: img } }), 'VARIANT_NOT_FOUND', 'unknown variant');
    await rejectsWith(t, wc.infer(worker.id, { variant: other.id, inputs: { image: img } }), 'VARIANT_NOT_LOADED', 'variant not loaded here');
    await rejectsWith(t, wc.infer(worker.id, { variant: variant.id, inputs: { picture: img } }), 'INVALID_INPUT', 'wrong input name');
    await rejectsWith(t, wc.infer(worker.id, { variant: variant.id, inputs: { image: arrayToTensor('float32', [1, 1, 27, 28], image(1, 1).subarray(0, 756)) } }), 'INVALID_INPUT', 'wrong shape');
    await rejectsWith(t, wc.infer(worker.id, { variant: variant.id, inputs: { image: { dtype: 'float64', shape: [1, 1, 28, 28], data: new Uint8Array(784 * 8) } } }), 'INVALID_INPUT', 'wrong dtype');
    await rejectsWith(t, wc.infer(worker.id, { variant: variant.id, inputs: { image: { dtype: 'float32', shape: [1, 1, 28, 28], data: new Uint8Array(100) } } }), 'INVALID_INPUT', 'data shorter than its shape');
    await rejectsWith(t, wc.infer(worker.id, { variant: variant.id, inputs: { image: arrayToTensor('float32', [9, 1, 28, 28], image(9, 1)) } }), 'INVALID_INPUT', 'more rows than the variant batches');
    const garbage = await sys.nc.request(subjects.worker.infer(worker.id), new Uint8Array([0xc1, 0xff, 0x00, 0x13]), { timeout: 2000 });
    await rejectsWith(t, Promise.resolve().then(() => answerOf(garbage.data, garbage.headers, false)), 'MALFORMED_MESSAGE', 'garbage bytes');
    const h = (await import('nats')).headers();
    h.set(headerNames.deadline, 'soon');
    const badHeader = await sys.nc.request(subjects.worker.infer(worker.id), encodePayload({ variant: variant.id, inputs: { image: img } }).data, { headers: h, timeout: 2000 });
    await rejectsWith(t, Promise.resolve().then(() => answerOf(badHeader.data, badHeader.headers, false)), 'BAD_REQUEST', 'unreadable deadline header');
    const ok = await wc.infer(worker.id, { variant: variant.id, inputs: { image: img } });
    t.same(ok.outputs.logits.shape, [1, 10], 'still serving');
  });

  t.test('load: true starts an instance on demand and the query waits for it', async (t) => {
    const a = await wc.infer(worker.id, { variant: other.id, load: true, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], image(1, 5)) } }, { deadlineMs: 10_000 });
    t.equal(a.variant, other.id);
    const list = await wc.instances(worker.id);
    t.same(list.instances.map((i) => i.variant).sort(), [variant.id, other.id].sort());
  });

  t.test('instance stats reach KV, and unload removes the instance', async (t) => {
    const key = keys.instance(worker.id, loaded.id);
    const rec = await kvGet<InstanceRecord>(sys.stores.instances, key);
    t.ok(rec, 'instance record in KV');
    t.equal(rec?.value.variant, variant.id);
    t.ok((rec?.value.capacityQps ?? 0) > 0, 'capacity from the profile');
    const other = (await wc.instances(worker.id)).instances.find((i) => i.variant !== variant.id)!;
    const r = await wc.unload(worker.id, { instance: other.id });
    t.same(r.unloaded, [other.id]);
    t.notOk(worker.instances.has(other.id), 'gone from the worker');
    await rejectsWith(t, wc.unload(worker.id, { instance: 'i-nosuch' }), 'VARIANT_NOT_LOADED', 'unknown instance');
  });
});

t.test('oversize requests are refused with PAYLOAD_TOO_LARGE', async (t) => {
  const sys = await startTestSystem(t);
  const info = await registerZooModel(sys.client, 'mlp-small');
  const variant = info.variants.find((v) => v.precision === 'fp32' && v.maxBatch === 8)!;
  const worker = await startTestWorker(t, sys, { inference: { maxRequestBytes: 16 * 1024 } });
  const wc = new WorkerClient(sys.nc);
  await wc.load(worker.id, variant.id);
  await rejectsWith(t, wc.infer(worker.id, { variant: variant.id, inputs: { image: arrayToTensor('float32', [8, 1, 28, 28], image(8, 1)) } }), 'PAYLOAD_TOO_LARGE', '25 KB request');
  const ok = await wc.infer(worker.id, { variant: variant.id, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], image(1, 1)) } });
  t.same(ok.outputs.logits.shape, [1, 10], 'a small one is served');
});
