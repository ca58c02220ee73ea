// The embedded server: starts on a free port with JetStream, and is reused when already running.
import t from 'tap';
import { startLocalNats } from '../runtime/bus/local-nats.js';
import { silentLogger } from '../runtime/log.js';
import { connectTest, startTestNats } from './helpers/system.js';

t.test('starts with JetStream and buckets are created idempotently', async (t) => {
  const server = await startTestNats(t);
  t.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  const { nc, stores } = await connectTest(t, server.url);
  const again = await import('../runtime/bus/store.js').then((m) => m.openStores(nc));
  t.equal((await again.models.status()).bucket, (await stores.models.status()).bucket);
  t.equal((await nc.jetstreamManager().then((j) => j.getAccountInfo())).streams, 7, 'six KV buckets and one object store');
});

t.test('a server already listening on the port is reused, not started twice', async (t) => {
  const server = await startTestNats(t);
  const reused = await startLocalNats({ storeDir: '/nonexistent', port: server.port, log: silentLogger, install: false });
  t.equal(reused.reused, true);
  t.equal(reused.url, server.url);
  await reused.stop(); // a no-op: the owner stops it
  const { nc } = await connectTest(t, server.url);
  t.equal(nc.isClosed(), false);
});
