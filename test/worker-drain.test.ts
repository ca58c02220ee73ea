// Draining a worker: queued and in-flight queries are all answered, new ones are refused, and the
// worker withdraws from KV and the bus before it reports itself stopped.
import t from 'tap';
import { WorkerClient } from '../runtime/client/worker-client.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { InfaasError } from '../schemas/errors.js';
import { kvGet } from '../runtime/bus/store.js';
import { pingInstances } from '../runtime/bus/service.js';
import { keys, services } from '../subjects/index.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';

t.test('drain finishes in-flight work, refuses new work, then withdraws', async (t) => {
  const sys = await startTestSystem(t);
  const info = await registerZooModel(sys.client, 'cnn-small');
  // Batch cap 1: a burst of queries makes a real queue that drain has to work through.
  const variant = info.variants.find((v) => v.precision === 'fp32' && v.maxBatch === 1)!;
  let stopped = 0;
  const worker = await startTestWorker(t, sys, { onStopped: () => { stopped++; } });
  const wc = new WorkerClient(sys.nc);
  await wc.load(worker.id, variant.id);

  const image = arrayToTensor('float32', [1, 1, 28, 28], new Float32Array(784).fill(0.5));
  const burst = Array.from({ length: 60 }, (_, i) => wc.infer(worker.id, { id: `q${i}`, variant: variant.id, inputs: { image } }, { deadlineMs: 20_000 })
    .then((r) => ({ ok: r.id }), (err: InfaasError) => ({ err: err.code })));
  // Same connection, so the worker sees the burst before the drain request.
  const reply = await wc.drain(worker.id);
  t.equal(reply.state, 'draining');
  t.ok(reply.inFlight > 0, `drain found ${reply.inFlight} queries in flight`);

  const outcomes = await Promise.all(burst);
  t.same(outcomes.filter((o) => 'err' in o), [], 'every query accepted before the drain is answered with a result');
  t.equal(outcomes.length, 60);

  await t.resolves(new Promise<void>((resolve) => { const i = setInterval(() => { if (stopped > 0) { clearInterval(i); resolve(); } }, 20); }), 'worker reports itself stopped');
  t.equal(stopped, 1);
  t.equal(worker.instances.size, 0, 'instances unloaded');
  t.notOk(await kvGet(sys.stores.workers, keys.worker(worker.id)), 'worker record withdrawn from KV');
  const live = await pingInstances(sys.nc, services.worker);
  t.notOk(live.some((p) => p.metadata.workerId === worker.id), 'micro service stopped');
  try {
    await wc.infer(worker.id, { variant: variant.id, inputs: { image } }, { timeoutMs: 2000 });
    t.fail('a stopped worker answered');
  } catch (err) {
    t.equal((err as InfaasError).code, 'WORKER_DRAINING', 'a query after the drain is refused, not lost');
  }
});
