// The dispatcher knows what it forwarded: a worker that has no responders is found at once and the
// query goes to another worker; a worker that sends a query back (draining) has it re-sent; a
// worker that never answers gets its query answered WORKER_LOST by the dispatcher. Fake workers
// are records in KV (real ones are the test's worker); every answer is the system's.
import t, { type Test } from 'tap';
import type { NatsConnection } from 'nats';
import { headers as natsHeaders } from 'nats';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { arrayToTensor, encodeJson } from '../runtime/bus/codec.js';
import { QueryClient } from '../runtime/client/query-client.js';
import type { Stores } from '../runtime/bus/store.js';
import { silentLogger } from '../runtime/log.js';
import type { InstanceRecord, WorkerRecord } from '../schemas/worker.js';
import { headerNames, keys, subjects } from '../subjects/index.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';
import { rejectsWith } from './helpers/expect.js';

/** A worker that exists only as KV records: an active instance of `variant`, as fast as the profile. */
async function fakeWorker(stores: Stores, id: string, variant: string): Promise<void> {
  const now = Date.now();
  const w: WorkerRecord = {
    id, host: 'nowhere', pid: 1, hardwareClass: 'cpu-test', pricePerHour: 0.001, capacity: { threads: 8, memoryBytes: 8e9 }, state: 'ready',
    usage: { cpuCores: 0, hostCpu: 0, rssBytes: 0, threadsReserved: 1, memoryReserved: 0, instances: 1, queued: 0, qps: 0 },
    startedAt: now, heartbeatAt: now,
  };
  const i: InstanceRecord = {
    id: 'i1', worker: id, variant, model: variant.split('.')[0], hardwareClass: 'cpu-test', state: 'active', threads: 1, maxBatch: 8, memoryBytes: 1e6,
    queueLength: 0, inFlight: 0, arrivalRate: 0, serviceRate: 0, deadlineMisses: 0, meanBatch: 0, latency: [], capacityQps: 1000,
    createdAt: now, updatedAt: now,
  };
  await stores.workers.put(keys.worker(id), encodeJson(w));
  await stores.instances.put(keys.instance(id, 'i1'), encodeJson(i));
}

const image = arrayToTensor('float32', [1, 1, 28, 28], new Float32Array(784).fill(0.5));

async function setUp(t: Test, withWorker = true) {
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [8], threads: [1], providers: ['cpu'] } });
  const info = await registerZooModel(sys.client, 'mlp-small');
  const variant = info.variants[0].id;
  const real = withWorker ? await startTestWorker(t, sys, { threads: 2 }) : undefined;
  await real?.load(variant);
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'faults' });
  t.teardown(() => dispatcher.stop());
  return { sys, variant, real, dispatcher, qc: new QueryClient(sys.nc) };
}

/**
 * Queries until one reaches the fake worker (selection ties break either way), answering each.
 * `timeoutMs` is how long the client waits for each answer (default: the objective plus a second).
 */
async function untilRouted(nc: NatsConnection, qc: QueryClient, fakeId: string, slo: number, options: { timeoutMs?: number } = {}): Promise<{ answers: string[]; errors: string[] }> {
  const seen = new Promise<void>((resolve) => {
    const sub = nc.subscribe(subjects.worker.infer(fakeId), { max: 1, callback: () => resolve() });
    void sub;
  });
  const answers: string[] = [];
  const errors: string[] = [];
  let reached = false;
  void seen.then(() => { reached = true; });
  for (let i = 0; i < 50 && !reached; i++) {
    await qc.query({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: slo } }, { retry: false, timeoutMs: options.timeoutMs }).then(
      (r) => { answers.push(r.worker); }, (e: { code: string }) => { errors.push(e.code); },
    );
  }
  return { answers, errors };
}

t.test('a worker with no responders: its query is re-sent to a live worker at once, and routing to it stops', async (t) => {
  const { sys, variant, real, dispatcher, qc } = await setUp(t);
  if (!real) throw new Error('no worker');
  await fakeWorker(sys.stores, 'ghost', variant);
  // Until a query has gone to the ghost: that is when the dispatcher's view shows it (no fixed wait).
  const answered: string[] = [];
  for (let i = 0; i < 200 && dispatcher.stats.resent === 0; i++) answered.push((await qc.query({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 2000 } }, { retry: false })).worker);
  t.same([...new Set(answered)], [real.id], 'every query answered by the live worker');
  t.ok(dispatcher.stats.resent >= 1, `the query sent to the ghost was re-sent (${dispatcher.stats.resent})`);
  const before = dispatcher.stats.resent;
  for (let i = 0; i < 20; i++) await qc.query({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 2000 } }, { retry: false });
  t.equal(dispatcher.stats.resent, before, 'no more queries go to the ghost');
});

t.test('a draining worker sends a query back and another worker answers it', async (t) => {
  const { sys, variant, real, dispatcher, qc } = await setUp(t);
  if (!real) throw new Error('no worker');
  // A worker that refuses everything it is sent, as a draining worker does.
  const sub = sys.nc.subscribe(subjects.worker.infer('drainy'), {
    callback: (_e, m) => {
      const h = natsHeaders();
      h.set(headerNames.refused, 'WORKER_DRAINING');
      m.respond(new Uint8Array(), { headers: h });
    },
  });
  t.teardown(() => sub.unsubscribe());
  await fakeWorker(sys.stores, 'drainy', variant);
  await new Promise((r) => setTimeout(r, 300));
  const { answers, errors } = await untilRouted(sys.nc, qc, 'drainy', 2000);
  t.same(errors, [], 'no errors');
  t.same([...new Set(answers)], [real.id], 'answered by the live worker');
  t.ok(dispatcher.stats.resent >= 1, 'the refused query was re-sent');
});

t.test('a worker that never answers: the dispatcher answers WORKER_LOST half a second past the deadline', async (t) => {
  const { sys, variant, qc } = await setUp(t, false);
  // Alive to probes (it answers its instances endpoint), silent on queries: a stalled worker.
  const probes = sys.nc.subscribe(subjects.worker.instances('mute'), { callback: (_e, m) => m.respond(encodeJson({ worker: 'mute', state: 'ready', instances: [] })) });
  const swallow = sys.nc.subscribe(subjects.worker.infer('mute'), { callback: () => undefined });
  t.teardown(() => { probes.unsubscribe(); swallow.unsubscribe(); });
  await fakeWorker(sys.stores, 'mute', variant);
  await new Promise((r) => setTimeout(r, 300));
  // The dispatcher answers at the deadline plus 500 ms; the client waits longer, so a busy machine cannot turn that into TIMEOUT.
  const { errors } = await untilRouted(sys.nc, qc, 'mute', 200, { timeoutMs: 10_000 });
  t.ok(errors.length >= 1, 'the query the mute worker swallowed got an error');
  t.equal(errors.at(-1), 'WORKER_LOST');
});

t.test('QueryClient: no dispatcher at all is a fast NO_WORKER that says so', async (t) => {
  const sys = await startTestSystem(t);
  const qc = new QueryClient(sys.nc);
  await rejectsWith(t, qc.query({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 2000 } }, { retry: false }), 'NO_WORKER', 'no controller');
});
