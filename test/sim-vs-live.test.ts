// The simulator against a live run on a small trace: the live system (nats-server, registrar,
// profiler, dispatcher, worker, ONNX Runtime) serves a short flat trace through `infaas bench`'s
// runner; the simulator runs the same trace with that system's profiles, worker and loaded
// instance. At light load they must agree on what the policies decide and what it costs: the
// variant that answers most (a stall on a busy machine can make the live dispatcher load another
// beside it), one outcome per query, the share within the objective (within 10 points), the
// provisioned cost.
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
  // Answers per variant, without the instance suffix.
  const byVariant = (v: Record<string, number>) => {
    const m = new Map<string, number>();
    for (const [k, n] of Object.entries(v)) m.set(k.split('@')[0]!, (m.get(k.split('@')[0]!) ?? 0) + n);
    return m;
  };
  const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1])[0]?.[0];
  const [lv, sv] = [byVariant(lo.variants), byVariant(so.variants)];
  t.equal(top(lv), top(sv), 'the same variant answers most');
  // A stall can make the live dispatcher load a second variant; the simulator's must all be among the live ones.
  t.ok([...sv.keys()].every((v) => lv.has(v)), `the simulated variants are among the live ones (${[...sv.keys()]} of ${[...lv.keys()]})`);
  const share = (x: { good: number; sent: number }) => x.good / x.sent;
  // The simulator is deterministic; the live share depends on the machine's load, so it is only compared.
  t.ok(share(so) >= 0.9, `the simulator serves nearly all within 100 ms (${share(so).toFixed(3)})`);
  t.comment(`live share within 100 ms: ${share(lo).toFixed(3)}`);
  t.ok(Math.abs(share(lo) - share(so)) <= 0.1, `live within 10 points of the simulator (live ${share(lo).toFixed(3)}, simulated ${share(so).toFixed(3)})`);
  // One worker for the measured 3 s: the simulator's figure is exact, the live one samples KV each window.
  t.ok(Math.abs(so.provisionedCost - (pricePerHour * 3) / 3600) < 1e-12, `simulated provisioned cost ${so.provisionedCost}`);
  t.ok(lo.provisionedCost != null && Math.abs(lo.provisionedCost - so.provisionedCost) <= 0.25 * so.provisionedCost, `live provisioned cost ${lo.provisionedCost} within 25 % of it`);
});
