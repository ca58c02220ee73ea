// The simulator against a live run on a small trace: the live system (nats-server, registrar,
// profiler, dispatcher, worker, ONNX Runtime) serves a short flat trace through `infaas bench`'s
// runner; the simulator runs the same trace with that system's profiles, worker and loaded
// instance. At light load they must agree on what the policies decide and what it costs: the
// variants that answer, every query answered, the share within the objective, the provisioned cost.
import t from 'tap';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';
import { ZOO_TASK } from '../zoo/index.js';
import { kvFleet, runBench } from '../bench/live/run.js';
import { flatTrace } from '../bench/trace.js';
import { readLiveProfiles } from '../bench/sim/profiles.js';
import { simulate } from '../bench/sim/simulate.js';
import { startTestSystem, startTestWorker, untilServing } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';

t.test('a small flat trace: the simulator and the live system agree', async (t) => {
  const sys = await startTestSystem(t);
  await registerZooModel(sys.client, 'mlp-small');
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  const pricePerHour = 0.5;
  await startTestWorker(t, sys, { threads: 2, pricePerHour });

  // Ready once one query is answered: the variant it loaded is the one both runs start with.
  await untilServing(sys.nc, 100);
  // The instance record reaches KV with the next heartbeat.
  let file = await readLiveProfiles(sys.stores, 'test');
  for (let i = 0; file.instances.length === 0 && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    file = await readLiveProfiles(sys.stores, 'test');
  }
  t.ok(file.instances.length > 0, `live instances: ${file.instances.map((i) => i.variant).join(', ')}`);

  const trace = flatTrace(40, 3.5);
  const live = await runBench({ nc: sys.nc, fleet: kvFleet(sys.stores) }, {
    load: { kind: 'trace', trace }, target: { task: ZOO_TASK }, latencyMs: 100, durationS: 3, warmupS: 0.5, windowS: 0.5, seed: 11, retry: true,
  });
  const w = file.workers[0]!;
  const sim = simulate({
    profiles: file.profiles, classes: [{ name: w.hardwareClass, instanceType: 'test', pricePerHour: w.pricePerHour, threads: w.threads, memoryBytes: w.memoryBytes, startMs: 2000 }],
    initialWorkers: [{ hardwareClass: w.hardwareClass, count: 1 }], initialInstances: file.instances, autoscaleClasses: [],
    trace, mix: [{ name: 'q', weight: 1, target: { task: ZOO_TASK }, latencyMs: 100 }], seed: 11, policy: 'infaas', windowS: 0.5, warmupS: 0.5,
  });
  const [lo, so] = [live.overall, sim.overall];
  t.comment(`live: ${lo.good}/${lo.sent} good, ${JSON.stringify(lo.errorsByCode)}, ${JSON.stringify(lo.variants)}; simulated: ${so.good}/${so.sent}, ${JSON.stringify(so.variants)}`);
  // Every arrival is sent; a late timer may move one across the warm-up's edge, so totals are compared.
  t.equal(sim.queries, live.sent, 'the same arrivals (same trace and seed)');
  t.equal(lo.answered + lo.errors, lo.sent, 'live: one outcome per query');
  t.equal(so.answered + so.errors, so.sent, 'simulated: one outcome per query');
  const strip = (v: Record<string, number>) => Object.keys(v).map((k) => k.split('@')[0]).sort();
  t.same(strip(so.variants), strip(lo.variants), 'the same variants answer');
  const share = (x: { good: number; sent: number }) => x.good / x.sent;
  t.ok(share(lo) >= 0.9 && share(so) >= 0.9, `both serve nearly all within 100 ms (live ${share(lo).toFixed(3)}, simulated ${share(so).toFixed(3)})`);
  t.ok(Math.abs(share(lo) - share(so)) <= 0.1, 'within 10 points of each other');
  // One worker for the measured 3 s: the simulator's figure is exact, the live one samples KV each window.
  t.ok(Math.abs(so.provisionedCost - (pricePerHour * 3) / 3600) < 1e-12, `simulated provisioned cost ${so.provisionedCost}`);
  t.ok(lo.provisionedCost != null && Math.abs(lo.provisionedCost - so.provisionedCost) <= 0.25 * so.provisionedCost, `live provisioned cost ${lo.provisionedCost} within 25 % of it`);
});
