// Capacity is memory, not reserved cores; errors say "not now" or "never" honestly, and following
// their retry advice leads to an answer. Real nats-server, profiles and ONNX Runtime.
import t from 'tap';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { arrayToTensor, encodePayload } from '../runtime/bus/codec.js';
import { answerOf } from '../runtime/client/worker-client.js';
import type { QueryResult } from '../schemas/query.js';
import { subjects } from '../subjects/index.js';
import { silentLogger } from '../runtime/log.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { WorkerClient } from '../runtime/client/worker-client.js';
import { loadSplit } from '../zoo/data.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';
import { rejectsWith } from './helpers/expect.js';

t.test('a 2-core worker with two instances loaded still serves a new variant, multi-row queries, and the retry rules hold', async (t) => {
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32', 'int8'], optLevels: ['all'], maxBatches: [1, 8], threads: [1], providers: ['cpu'] } });
  const small = await registerZooModel(sys.client, 'mlp-small');
  const cnn = await registerZooModel(sys.client, 'cnn-small');
  const worker = await startTestWorker(t, sys, { threads: 2, monitor: { windowMs: 200 } });
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  const wc = new WorkerClient(sys.nc);
  const qc = new QueryClient(sys.nc);
  const { images } = loadSplit('validation', 8);
  const rows = (n: number) => arrayToTensor('float32', [n, 1, 28, 28], images.subarray(0, n * 784));

  // What `infaas up`'s demonstration leaves behind: two single-thread instances on two cores.
  const [a, b] = [small.variants.find((v) => v.maxBatch === 1 && v.precision === 'fp32')!, cnn.variants.find((v) => v.maxBatch === 1 && v.precision === 'fp32')!];
  await wc.load(worker.id, a.id);
  await wc.load(worker.id, b.id);
  await new Promise((r) => setTimeout(r, 400)); // the dispatcher's view: two instances, no "free" thread

  t.test('a third variant loads beside them: cores are shared, memory is the limit', async (t) => {
    const third = cnn.variants.find((v) => v.maxBatch === 8 && v.precision === 'int8')!;
    const answer = await qc.query({ variant: third.id, inputs: { image: rows(1) }, slo: { latencyMs: 10_000 } });
    t.equal(answer.variant, third.id);
    t.ok(worker.instances.size >= 3, `${worker.instances.size} instances on a 2-core worker`);
  });

  t.test('warm-up loads from several controllers start one instance (ifAbsent)', async (t) => {
    const v = small.variants.find((x) => x.maxBatch === 1 && x.precision === 'int8')!;
    const ask = () => sys.nc.request(subjects.worker.load(worker.id), new TextEncoder().encode(JSON.stringify({ variant: v.id, noWait: true, ifAbsent: true })), { timeout: 5000 });
    const replies = await Promise.all([ask(), ask(), ask()]);
    const ids = new Set(replies.map((m) => (JSON.parse(new TextDecoder().decode(m.data)) as { id: string }).id));
    t.equal(ids.size, 1, 'one instance for three requests');
    t.equal([...worker.instances.values()].filter((i) => i.spec.variant === v.id).length, 1);
  });

  t.test('a query of four rows is served by a variant that batches', async (t) => {
    const answer = await qc.query({ model: 'mlp-small', inputs: { image: rows(4) }, slo: { latencyMs: 10_000 } });
    t.same(answer.outputs.logits.shape, [4, 10]);
    t.equal(small.variants.find((v) => v.id === answer.variant)?.maxBatch, 8, 'not the batch-1 variant');
  });

  t.test('INSTANCE_LOADING carries retry advice; following it leads to an answer', async (t) => {
    // A batching variant of mlp-small that is not loaded: the four-row query above loaded one of the
    // two (fp32 or int8, whichever its profile made cheaper on this machine).
    const loaded = new Set([...worker.instances.values()].map((i) => i.spec.variant));
    const cold = small.variants.find((v) => v.maxBatch === 8 && !loaded.has(v.id))!;
    // 150 ms: far more than the run, less than any load (the session alone is budgeted 200 ms).
    const q = { variant: cold.id, inputs: { image: rows(1) }, slo: { latencyMs: 150 } };
    const err = await rejectsWith(t, qc.query(q, { retry: false }), 'INSTANCE_LOADING', 'not loaded, and loading takes longer than 150 ms');
    const after = err?.retryAfterMs;
    t.ok(after !== undefined && after > 0 && err?.retryable, `retry in ${after} ms`);
    // Ready is the worker's instance serving, not a clock: a busy machine may load slower than advised.
    const end = Date.now() + 30_000;
    const active = () => [...worker.instances.values()].some((i) => i.spec.variant === cold.id && i.state === 'active');
    while (!active() && Date.now() < end) await new Promise((r) => setTimeout(r, Math.max(10, after ?? 100)));
    t.ok(active(), 'the query started the load it advised waiting for');
    // A generous objective: what is asserted is the variant that answers, not the machine's speed.
    const answer = await qc.query({ ...q, slo: { latencyMs: 10_000 } }, { retry: false });
    t.equal(answer.variant, cold.id, 'answered by the variant once it was ready');
  });

  t.test('the client retries by itself within the deadline', async (t) => {
    const cold = cnn.variants.find((v) => v.maxBatch === 8 && v.precision === 'fp32')!;
    // Retries reuse the first try's deadline, so the objective must cover a load on a busy machine.
    const answer = await qc.query({ variant: cold.id, inputs: { image: rows(1) }, slo: { latencyMs: 20_000 } });
    t.equal(answer.variant, cold.id, 'loaded and answered, no error seen by the caller');
  });

  t.test('never: INFEASIBLE, unless the query asks for the closest variant', async (t) => {
    // Sent without a deadline header, so the objective counts from the dispatcher's receipt
    // (however loaded the machine), and the 2 ms serving-path allowance leaves no time to compute.
    const ask = async (slo: Record<string, unknown>) => {
      const enc = encodePayload({ model: 'cnn-small', inputs: { image: rows(1) }, slo });
      const m = await sys.nc.request(subjects.query, enc.data, { headers: enc.headers, timeout: 10_000 });
      return answerOf<QueryResult>(m.data, m.headers, false);
    };
    const slo = { latencyMs: 2.001, minAccuracy: 0.5 };
    const err = await rejectsWith(t, ask(slo), 'INFEASIBLE', 'the serving path alone takes the 2 ms');
    t.equal(err?.retryable, false, 'not retryable');
    t.ok(Number(err?.details?.lowestLatencyMs) > 2, `achievable: ${err?.details?.lowestLatencyMs} ms`);
    const closest = await ask({ ...slo, onInfeasible: 'closest' });
    t.equal(closest.model, 'cnn-small');
    t.match(closest.note, /^closest: /, `says so: ${closest.note}`);
  });

  t.test('selection judges the effective deadline: a caller deadline tighter than the objective wins', async (t) => {
    // 1 ms left of a 10 s objective: less than the path ahead (or, on a busy machine, already past), never "infeasible".
    const err = await rejectsWith(t, qc.query({ model: 'mlp-small', inputs: { image: rows(1) }, slo: { latencyMs: 10_000 } }, { deadline: Date.now() + 1 }), 'DEADLINE_EXCEEDED', 'not never, too late');
    t.match(err?.message, /left of the 10000 ms objective|deadline passed/);
  });
});

t.test('instances of an unregistered model are unloaded', async (t) => {
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [1], threads: [1], providers: ['cpu'] } });
  const small = await registerZooModel(sys.client, 'mlp-small');
  const worker = await startTestWorker(t, sys, { autoscale: true, monitor: { windowMs: 200 } });
  await new WorkerClient(sys.nc).load(worker.id, small.variants[0].id);
  t.equal(worker.instances.size, 1);
  await sys.client.unregister('mlp-small');
  const end = Date.now() + 10_000;
  while (worker.instances.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  t.equal(worker.instances.size, 0, 'unloaded by the next autoscaler round');
});
