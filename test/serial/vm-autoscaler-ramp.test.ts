// A load ramp makes the VM-autoscaler add a local worker process (its first one is busy), and a
// quiet period removes one again. Runs alone: it keeps a core busy on purpose.
import t from 'tap';
import { arrayToTensor } from '../../runtime/bus/codec.js';
import type { InfaasError } from '../../schemas/errors.js';
import { QueryClient } from '../../runtime/client/query-client.js';
import { kvKeys } from '../../runtime/bus/store.js';
import { ZOO_TASK } from '../../zoo/index.js';
import { startTestSystem } from '../helpers/system.js';
import { registerZooModel } from '../helpers/zoo.js';
import { startTestController } from '../helpers/controller.js';

t.test('a load ramp adds a worker; a quiet period removes one', async (t) => {
  // cnn-wide batches of 8 take ~5.5 ms: 200 such queries a second are more than one core serves.
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [8], threads: [1], providers: ['cpu'] } });
  await registerZooModel(sys.client, 'cnn-wide');
  const { provisioner, decisions } = await startTestController(t, sys, { cooldownMs: 2000, scaleInAfterMs: 3000 });
  const until = async (what: string, ms: number, pred: () => boolean) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; decisions: ${decisions.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await until('the minimum worker', 30_000, () => provisioner.managed().length === 1);
  t.match(decisions[0], /scale-out cpu-test: 0 workers, fewer than the minimum 1/);
  let live = 0;
  await until('it to join', 30_000, () => { void kvKeys(sys.stores.workers).then((k) => { live = k.length; }); return live > 0; });

  const qc = new QueryClient(sys.nc);
  const image = arrayToTensor('float32', [8, 1, 28, 28], new Float32Array(8 * 784).fill(0.3));
  const outcomes = { ok: 0, errors: {} as Record<string, number> };
  const pending = new Set<Promise<void>>();
  let rate = 200;
  const timer = setInterval(() => {
    for (let i = 0; i < rate / 50; i++) {
      const p: Promise<void> = qc.query({ task: ZOO_TASK, inputs: { image }, slo: { latencyMs: 5000 } }, { timeoutMs: 10_000 })
        .then(() => { outcomes.ok++; }, (err: InfaasError) => { outcomes.errors[err.code] = (outcomes.errors[err.code] ?? 0) + 1; })
        .finally(() => pending.delete(p));
      pending.add(p);
    }
  }, 20);
  t.teardown(() => clearInterval(timer));

  // Any of the load signals may fire first: a busy CPU, the worker's own mitigation request (its
  // model-autoscaler has no room to replicate), or queries the dispatcher could not place.
  const rampSignal = /scale-out cpu-test: (all 1 workers busy|\d+ mitigation requests|\d+ queries could not be placed)/;
  await until('a scale-out under load', 45_000, () => decisions.some((d) => rampSignal.test(d)));
  await until('the second worker', 30_000, () => provisioner.managed().length === 2);
  t.pass(decisions.find((d) => rampSignal.test(d))!);

  rate = 0;
  clearInterval(timer);
  await Promise.all([...pending]);
  t.ok(outcomes.ok > 0, `answers during the ramp: ${outcomes.ok}, errors ${JSON.stringify(outcomes.errors)}`);
  t.notOk(outcomes.errors.TIMEOUT, 'no query went unanswered');

  await until('a scale-in after the quiet period', 45_000, () => provisioner.managed().length === 1);
  t.match(decisions.join('\n'), /scale-in cpu-test \(worker-\S+\): utilisation \d+% below 20%/);
});
