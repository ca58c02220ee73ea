// The embedded server: starts on a free port with JetStream, and is reused when already running.
import t from 'tap';
import { DEFAULT_MAX_PAYLOAD, startLocalNats } from '../runtime/bus/local-nats.js';
import { silentLogger } from '../runtime/log.js';
import { connectTest, startTestNats } from './helpers/system.js';

t.test('starts with JetStream and buckets are created idempotently', async (t) => {
  const server = await startTestNats(t);
  t.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  const { nc, stores } = await connectTest(t, server.url);
  const again = await import('../runtime/bus/store.js').then((m) => m.openStores(nc));
  t.equal((await again.models.status()).bucket, (await stores.models.status()).bucket);
  t.equal((await nc.jetstreamManager().then((j) => j.getAccountInfo())).streams, 10, 'eight KV buckets and two object stores (the repository, the blobs)');
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

t.test("the embedded server's max payload is 8 MiB by default and configurable", async (t) => {
  const server = await startTestNats(t);
  t.equal(server.maxPayload, DEFAULT_MAX_PAYLOAD);
  const { nc } = await connectTest(t, server.url);
  t.equal(nc.info?.max_payload, 8 * 1024 * 1024, 'what the server announces to clients');
  const small = await startTestNats(t, { maxPayload: 256 * 1024 });
  const other = await connectTest(t, small.url);
  t.equal(other.nc.info?.max_payload, 256 * 1024, 'as configured');
  const reused = await startLocalNats({ storeDir: '/nonexistent', port: small.port, log: silentLogger, install: false });
  t.equal(reused.maxPayload, 256 * 1024, "a reused server reports its own, whatever was asked");
  await t.rejects(startLocalNats({ storeDir: '/nonexistent', port: -1, log: silentLogger, install: false, maxPayload: 100 * 1024 * 1024 }), /max payload must be .* 1024 to 67108864/);
});
