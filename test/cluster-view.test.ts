// The KV-fed views are an edge: a value that is not JSON or not a valid record is skipped and the
// watch goes on; liveness is judged by this process's clock; a worker found dead is out until it
// heartbeats again; the views keep their state across a restart of the server and resume.
import t, { type Test } from 'tap';
import type { Stores } from '../runtime/bus/store.js';
import { ClusterView } from '../runtime/views/cluster-view.js';
import { encodeJson } from '../runtime/bus/codec.js';
import { followStatus } from '../runtime/bus/kv-watch.js';
import { silentLogger } from '../runtime/log.js';
import type { WorkerRecord } from '../schemas/worker.js';
import { RestartableNats } from '../bench/fault-kit.js';
import { connectTest, startTestNats } from './helpers/system.js';

const worker = (id: string, heartbeatAt = Date.now()): WorkerRecord => ({
  id, host: 'h', pid: 1, hardwareClass: 'cpu-test', pricePerHour: 0.1, capacity: { threads: 2, memoryBytes: 1e9 }, state: 'ready',
  usage: { cpuCores: 0, hostCpu: 0, rssBytes: 0, threadsReserved: 0, memoryReserved: 0, instances: 0, queued: 0, qps: 0 },
  startedAt: Date.now(), heartbeatAt,
});

const heardFrom = (view: ClusterView, key: string): Promise<void> => new Promise((resolve) => view.onChange((_b, k) => { if (k === key) resolve(); }));

t.test('a stray non-JSON value or an invalid record is skipped and later records still arrive', async (t) => {
  const server = await startTestNats(t);
  const { stores } = await connectTest(t, server.url);
  await stores.workers.put('junk', new TextEncoder().encode('not json {'));
  await stores.workers.put('forged', encodeJson({ id: 'forged', state: 'ready', heartbeatAt: Date.now() }));
  const view = new ClusterView(silentLogger);
  await view.start(stores);
  t.teardown(() => view.stop());
  t.notOk(view.workers.has('junk'), 'not JSON: skipped at start');
  t.notOk(view.workers.has('forged'), 'not a worker record: skipped at start');
  const changed = heardFrom(view, 'w1');
  await stores.workers.put('junk2', new TextEncoder().encode('\u0000\u0001'));
  await stores.workers.put('w1', encodeJson(worker('w1')));
  await changed;
  t.equal(view.workers.get('w1')?.id, 'w1', 'the watch is still running');
  t.notOk(view.workers.has('junk2'));
  const bad = { ...worker('w1'), capacity: { threads: -3, memoryBytes: 1 } };
  await stores.workers.put('w1', encodeJson(bad));
  const after = heardFrom(view, 'w2');
  await stores.workers.put('w2', encodeJson(worker('w2')));
  await after;
  t.equal(view.workers.get('w1')?.capacity.threads, 2, 'an invalid update keeps the last valid record');
});

/** A view over a fresh server's buckets. */
async function startView(t: Test): Promise<{ view: ClusterView; stores: Stores }> {
  const server = await startTestNats(t);
  const { stores } = await connectTest(t, server.url);
  const view = new ClusterView(silentLogger, 5000);
  await view.start(stores);
  t.teardown(() => view.stop());
  return { view, stores };
}

t.test('liveness is judged by when this process heard a record, not by the writer\'s clock', async (t) => {
  const { view, stores } = await startView(t);
  const heard = heardFrom(view, 'w1');
  // A writer whose clock runs a minute behind: its heartbeats look stale, but they arrive now.
  await stores.workers.put('w1', encodeJson(worker('w1', Date.now() - 60_000)));
  await heard;
  t.same(view.liveWorkers().map((w) => w.id), ['w1'], 'live: just heard from');
  t.same(view.liveWorkers(Date.now() + 6000).map((w) => w.id), [], 'gone once nothing has been heard for staleMs');
});

t.test('a worker marked down is out until a newer record of it arrives', async (t) => {
  const { view, stores } = await startView(t);
  const heard = heardFrom(view, 'w1');
  await stores.workers.put('w1', encodeJson(worker('w1')));
  await heard;
  view.markDown('w1');
  t.ok(view.isDown('w1'));
  t.same(view.liveWorkers().map((w) => w.id), [], 'not live once marked down');
  await new Promise((r) => setTimeout(r, 5));
  const again = heardFrom(view, 'w1');
  await stores.workers.put('w1', encodeJson(worker('w1')));
  await again;
  t.notOk(view.isDown('w1'));
  t.same(view.liveWorkers().map((w) => w.id), ['w1'], 'live again after a heartbeat');
});

t.test('across a server restart the view keeps its workers and resumes its watch', async (t) => {
  const nats = new RestartableNats();
  await nats.start();
  t.teardown(() => nats.dispose());
  const { stores } = await connectTest(t, nats.url);
  const view = new ClusterView(silentLogger, 5000);
  await view.start(stores);
  t.teardown(() => view.stop());
  const heard = heardFrom(view, 'w1');
  await stores.workers.put('w1', encodeJson(worker('w1')));
  await heard;
  // Followed before the outage, so the reconnect that ends it cannot be missed (nc.info stays set from the first connection).
  const reconnected = new Promise<void>((resolve) => {
    const stop = followStatus(stores.nc, (type) => { if (type === 'reconnect') { stop(); resolve(); } });
  });
  await nats.stop();
  await new Promise((r) => setTimeout(r, 6000));
  await nats.start();
  await reconnected;
  // The outage does not count against the heartbeat: the last known worker is still live.
  const stillLive = await waitFor(() => view.liveWorkers().some((w) => w.id === 'w1'), 3000);
  t.ok(stillLive, 'the worker heard before the outage is still live after it');
  // Records written after the restart reach the view (its watch resumed).
  const w2 = heardFrom(view, 'w2');
  for (let i = 0; i < 40; i++) {
    try { await stores.workers.put('w2', encodeJson(worker('w2'))); break; } catch { await new Promise((r) => setTimeout(r, 250)); }
  }
  await w2;
  t.equal(view.workers.get('w2')?.id, 'w2', 'a record written after the restart arrives');
});

async function waitFor(ok: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (ok()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return ok();
}

t.test('a silent feed is not taken for dead workers: two or more quiet at once are kept for a while', async (t) => {
  const { feedSilenceGrace } = await import('../runtime/views/cluster-view.js');
  const last = 100_000;
  // Two workers heard just before the feed stopped: the silence does not count, up to the grace.
  t.equal(feedSilenceGrace([last - 500, last], last, last + 12_000, 5000, 30_000), 12_000);
  t.equal(feedSilenceGrace([last - 500, last], last, last + 45_000, 5000, 30_000), 30_000, 'capped at the grace');
  // One worker alone: its silence may be its death, so it counts.
  t.equal(feedSilenceGrace([last], last, last + 12_000, 5000, 30_000), 0);
  // A worker already stale when the feed stopped does not make the silence a feed's.
  t.equal(feedSilenceGrace([last - 9000, last], last, last + 12_000, 5000, 30_000), 0);

  const { view, stores } = await startView(t);
  for (const id of ['w1', 'w2']) {
    const heard = heardFrom(view, id);
    await stores.workers.put(id, encodeJson(worker(id)));
    await heard;
  }
  const now = Date.now();
  t.same(view.liveWorkers(now + 12_000).map((w) => w.id).sort(), ['w1', 'w2'], 'both kept while nothing at all arrives');
  t.same(view.liveWorkers(now + 40_000).map((w) => w.id), [], 'gone once the silence outlasts the grace');
  view.markDown('w1', now + 1);
  t.same(view.liveWorkers(now + 12_000).map((w) => w.id), ['w2'], 'a worker found dead is out even so');
  // While the feed flows, a worker that stays quiet ages as usual (a view with staleMs 300).
  const quick = new ClusterView(silentLogger, 300);
  await quick.start(stores);
  t.teardown(() => quick.stop());
  const w3 = heardFrom(quick, 'w3');
  await stores.workers.put('w3', encodeJson(worker('w3')));
  await w3;
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const again = heardFrom(quick, 'w3');
    await stores.workers.put('w3', encodeJson(worker('w3')));
    await again;
  }
  t.same(quick.liveWorkers().map((w) => w.id), ['w3'], 'w1 and w2 are stale while w3 keeps writing');
});
