// The KV-fed views survive a value that is not JSON: it is skipped, the watch goes on.
import t from 'tap';
import { ClusterView } from '../runtime/views/cluster-view.js';
import { encodeJson } from '../runtime/bus/codec.js';
import { silentLogger } from '../runtime/log.js';
import { connectTest, startTestNats } from './helpers/system.js';

t.test('a stray non-JSON value is skipped and later records still arrive', async (t) => {
  const server = await startTestNats(t);
  const { stores } = await connectTest(t, server.url);
  await stores.workers.put('junk', new TextEncoder().encode('not json {'));
  const view = new ClusterView(silentLogger);
  await view.start(stores);
  t.teardown(() => view.stop());
  t.notOk(view.workers.has('junk'), 'skipped at start');
  const changed = new Promise<void>((resolve) => view.onChange(() => { if (view.workers.has('w1')) resolve(); }));
  await stores.workers.put('junk2', new TextEncoder().encode('\u0000\u0001'));
  await stores.workers.put('w1', encodeJson({ id: 'w1' }));
  await changed;
  t.same(view.workers.get('w1'), { id: 'w1' }, 'the watch is still running');
  t.notOk(view.workers.has('junk2'));
});

t.test('liveness is judged by when this process heard a record, not by the writer\'s clock', async (t) => {
  const server = await startTestNats(t);
  const { stores } = await connectTest(t, server.url);
  const view = new ClusterView(silentLogger, 5000);
  await view.start(stores);
  t.teardown(() => view.stop());
  const record = (heartbeatAt: number) => encodeJson({ id: 'w1', state: 'ready', heartbeatAt });
  const heard = new Promise<void>((resolve) => view.onChange((_b, key) => { if (key === 'w1') resolve(); }));
  // A writer whose clock runs a minute behind: its heartbeats look stale, but they arrive now.
  await stores.workers.put('w1', record(Date.now() - 60_000));
  await heard;
  t.same(view.liveWorkers().map((w) => w.id), ['w1'], 'live: just heard from');
  t.same(view.liveWorkers(Date.now() + 6000).map((w) => w.id), [], 'gone once nothing has been heard for staleMs');
});
