// The KV-fed views survive a value that is not JSON: it is skipped, the watch goes on.
import t from 'tap';
import { ClusterView } from '../runtime/cluster-view.js';
import { encodeJson } from '../runtime/codec.js';
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
