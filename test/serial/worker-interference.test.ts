// Interference: CPU hogs co-located with an instance make its observed latency rise well above the
// profile while demand stays far below capacity (batches of 8 rows: ~5 ms runs, long enough for the
// scheduler to share the core with the hogs; sub-millisecond runs barely notice them, see
// docs/worker.md): the monitor marks it Interfered (never
// Overloaded), the autoscaler asks for mitigation, and removing the hogs clears the verdict.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import t from 'tap';
import type { InstanceRecord, WorkerEvent } from '../../schemas/worker.js';
import { arrayToTensor, decodeJson } from '../../runtime/bus/codec.js';
import { entryValue } from '../../runtime/bus/store.js';
import { WorkerClient } from '../../runtime/client/worker-client.js';
import { keys, subjects } from '../../subjects/index.js';
import { startTestSystem, startTestWorker } from '../helpers/system.js';
import { openLoop } from '../helpers/load.js';
import { registerZooModel } from '../helpers/zoo.js';

function startHogs(n: number): ChildProcess[] {
  return Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

t.test('a co-located CPU hog makes the instance Interfered, not Overloaded; removing it clears', async (t) => {
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [8], threads: [1], providers: ['cpu'] } });
  const info = await registerZooModel(sys.client, 'cnn-wide');
  const variant = info.variants[0];
  // One thread of budget: no variant with more threads fits, so mitigation goes to the controller.
  const worker = await startTestWorker(t, sys, { autoscale: true, threads: 1, monitor: { windowMs: 500 }, scaling: { cooldownMs: 500 } });
  const wc = new WorkerClient(sys.nc);
  const inst = await wc.load(worker.id, variant.id);

  const states: string[] = [];
  let latest: InstanceRecord | undefined;
  const watch = await sys.stores.instances.watch({ key: keys.instance(worker.id, inst.id) });
  void (async () => {
    for await (const e of watch) {
      const r = entryValue<InstanceRecord>(e);
      if (r) { latest = r; if (states[states.length - 1] !== r.state) states.push(r.state); }
    }
  })();
  const events: WorkerEvent[] = [];
  const sub = sys.nc.subscribe(subjects.events.worker(worker.id), { callback: (_e, m) => events.push(decodeJson(m.data) as WorkerEvent) });
  const hogs: ChildProcess[] = [];
  t.teardown(() => { watch.stop(); sub.unsubscribe(); for (const h of hogs) h.kill('SIGKILL'); });

  const until = (pred: () => boolean, ms: number, what: string) => new Promise<void>((resolve, reject) => {
    const end = Date.now() + ms;
    const i = setInterval(() => {
      if (pred()) { clearInterval(i); resolve(); } else if (Date.now() > end) { clearInterval(i); reject(new Error(`timed out waiting for ${what}; states ${states.join(' -> ')}, last: ${latest?.reason}`)); }
    }, 25);
  });

  // Steady load at a small fraction of capacity (8-row queries, ~5 ms each: ~190 q/s).
  const image = arrayToTensor('float32', [8, 1, 28, 28], new Float32Array(8 * 784).fill(0.5));
  const load = openLoop(wc, worker.id, () => ({ variant: variant.id, inputs: { image } }), 20, 5000);
  t.teardown(() => load.stop());
  await until(() => (latest?.latency.length ?? 0) > 0 && latest!.state === 'active', 10_000, 'a first stats window');
  t.equal(latest!.state, 'active', `before the hog: ${latest!.reason}`);

  // Twice as many spinning processes as cores: the instance's thread gets well under half a core.
  hogs.push(...startHogs(2 * availableParallelism()));
  await until(() => latest?.state === 'interfered', 30_000, 'Interfered');
  t.pass(`with the hog: ${latest!.reason}`);
  await until(() => events.some((e) => e.type === 'mitigation.requested'), 10_000, 'a mitigation request');
  t.pass(`mitigation requested: ${events.find((e) => e.type === 'mitigation.requested')!.message}`);

  for (const h of hogs.splice(0)) h.kill('SIGKILL');
  await until(() => latest?.state === 'active', 30_000, 'Active again');
  t.pass(`hog removed: ${latest!.reason}`);
  t.notOk(states.includes('overloaded'), `never Overloaded (states: ${states.join(' -> ')})`);
  const stats = await load.stop();
  t.equal(stats.ok + Object.values(stats.errors).reduce((a, b) => a + b, 0), stats.sent, `every query answered (${stats.ok} results, errors ${JSON.stringify(stats.errors)})`);
});
