// The model-autoscaler on a real worker: a load ramp past the profiled capacity makes it replicate
// or upgrade the variant; a quiet period makes it scale back down. Every query gets an answer.
import t from 'tap';
import type { WorkerEvent } from '../../schemas/worker.js';
import { arrayToTensor, decodeJson } from '../../runtime/bus/codec.js';
import { WorkerClient } from '../../runtime/client/worker-client.js';
import { subjects } from '../../subjects/index.js';
import { startTestSystem, startTestWorker } from '../helpers/system.js';
import { openLoop } from '../helpers/load.js';
import { registerZooModel } from '../helpers/zoo.js';

function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const i = setInterval(() => {
      if (pred()) { clearInterval(i); resolve(); } else if (Date.now() > end) { clearInterval(i); reject(new Error(`timed out waiting for ${what}`)); }
    }, 25);
  });
}

t.test('a load ramp scales the variant up; a quiet period scales it down', async (t) => {
  // cnn-wide: ~5.5 ms per 8-row batch on one core, so one instance saturates near 1,450 rows/s;
  // 8-row queries at 400 q/s offer 3,200 rows/s without the load generator itself needing a core.
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [8, 32], threads: [1], providers: ['cpu'] } });
  const info = await registerZooModel(sys.client, 'cnn-wide');
  const b8 = info.variants.find((v) => v.maxBatch === 8)!;
  const worker = await startTestWorker(t, sys, {
    autoscale: true, threads: 2,
    monitor: { windowMs: 500 },
    scaling: { cooldownMs: 1000, scaleDownAfterMs: 2000, unloadIdleAfterMs: 4000 },
  });
  const events: WorkerEvent[] = [];
  const sub = sys.nc.subscribe(subjects.events.worker(worker.id), { callback: (_e, m) => events.push(decodeJson(m.data) as WorkerEvent) });
  t.teardown(() => sub.unsubscribe());
  t.teardown(() => { if (process.env.DEBUG_EVENTS) for (const e of events) t.comment(`${e.at} ${e.type} ${e.message}`); });
  const decisions = () => events.filter((e) => e.type === 'autoscaler.decision').map((e) => String(e.details?.action));

  const wc = new WorkerClient(sys.nc);
  const first = await wc.load(worker.id, b8.id);
  const image = arrayToTensor('float32', [8, 1, 28, 28], new Float32Array(8 * 784).fill(0.25));
  const load = openLoop(wc, worker.id, () => ({ variant: b8.id, inputs: { image } }), 10, 3000);

  // Light load first: nothing to do.
  await new Promise((r) => setTimeout(r, 1500));
  t.same(decisions(), [], 'no decision at light load');

  load.setRate(400);
  await until(() => decisions().some((d) => d === 'replicate' || d === 'switch'), 30_000, 'a scale-up decision');
  const up = events.find((e) => e.type === 'autoscaler.decision')!;
  t.ok(['replicate', 'switch'].includes(String(up.details?.action)), `scaled up: ${up.message}`);
  t.ok(Number(up.details?.demand) > 0 && Number(up.details?.capacity) > 0, 'the decision carries its numbers');
  await until(() => [...worker.instances.values()].some((i) => i.spec.id !== first.id && i.serving), 30_000, 'the new instance to serve');
  const upStats = await load.stop();
  t.equal(upStats.ok + Object.values(upStats.errors).reduce((a, b) => a + b, 0), upStats.sent, `every one of ${upStats.sent} queries answered (${upStats.ok} results, errors ${JSON.stringify(upStats.errors)})`);
  t.notOk(upStats.errors.TIMEOUT, 'none timed out');
  t.notOk(upStats.errors.VARIANT_NOT_LOADED, 'queries for the old variant follow the switch');
  if (up.details?.action === 'switch') {
    const to = String(up.message.split(' -> ')[1]).split(':')[0];
    t.ok((upStats.byVariant[to] ?? 0) > 0, `traffic moved to ${to}: ${JSON.stringify(upStats.byVariant)}`);
  }

  // Quiet: no arrivals. Replicas go after scaleDownAfterMs, lone idle instances after unloadIdleAfterMs.
  const before = worker.instances.size;
  await until(() => decisions().some((d) => d === 'remove' || d === 'unload'), 30_000, 'a scale-down decision');
  await until(() => worker.instances.size < before, 10_000, 'an instance to go');
  t.pass(`scaled down: ${events.filter((e) => e.type === 'autoscaler.decision').slice(-1)[0].message}`);
});
