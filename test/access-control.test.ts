// Access control with a real nats-server: each role's credential does its job end to end, and a
// client credential can query and read its own answers, nothing else, with a clear error for each refusal.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { NatsConnection } from 'nats';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { startProfiler } from '../actors/profiler/index.js';
import { startRegistrar } from '../actors/registrar/index.js';
import { startWorker } from '../actors/worker/index.js';
import { startVmAutoscaler } from '../actors/vm-autoscaler/index.js';
import { startStack } from '../cluster/local.js';
import { credentialFile, ensureLocalCredentials, isLoopbackUrl, permissionDenied, resolveAccess } from '../runtime/bus/auth.js';
import { arrayToTensor, encodeJson, encodePayload } from '../runtime/bus/codec.js';
import { connectBus } from '../runtime/bus/nats.js';
import { objectBytes, putObject, type Stores } from '../runtime/bus/store.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { RegistryClient } from '../runtime/client/registry-client.js';
import { WorkerClient } from '../runtime/client/worker-client.js';
import { silentLogger } from '../runtime/log.js';
import { InfaasError } from '../schemas/errors.js';
import type { QueryResult } from '../schemas/query.js';
import { isAnswerSubject, type Role } from '../subjects/access.js';
import { buckets, keys, queueGroups, subjects } from '../subjects/index.js';
import { connectTest, fastProfiler, startTestNats } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';
import { rejectsWith } from './helpers/expect.js';

const BIN = new URL('../bin/infaas.js', import.meta.url).pathname;
const image = arrayToTensor('float32', [1, 1, 28, 28], new Float32Array(784));

function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Connects as `role` with the credentials generated in `dataDir`; records every permission the server refuses it. */
async function connectAs(t: Test, url: string, dataDir: string, role: Role, tls?: { caFile: string }) {
  const access = resolveAccess({ credentials: credentialFile(dataDir, role), ...(tls ? { tls } : {}) }, role);
  const { nc, stores } = role === 'client'
    ? { nc: await connectBus({ servers: url, name: role, log: silentLogger, extra: access.options }), stores: undefined }
    : await connectTest(t, url, role, access.options);
  if (role === 'client') t.teardown(() => nc.close());
  const denied: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.permissionContext) denied.push(`${s.permissionContext.operation} ${s.permissionContext.subject}`);
  })();
  return { nc, stores: stores as Stores, denied };
}

/** Subscribes and resolves with the error the server's refusal delivers to the subscription. */
function refusedSubscription(nc: NatsConnection, subject: string, queue?: string): Promise<InfaasError | undefined> {
  return new Promise((resolve) => {
    nc.subscribe(subject, { ...(queue ? { queue } : {}), callback: (err) => resolve(err ? permissionDenied(err) : undefined) });
  });
}

async function rejectsDenied(t: Test, p: Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  const err = await rejectsWith(t, p.catch((e) => { throw permissionDenied(e) ?? e; }), 'PERMISSION_DENIED', what);
  if (err) t.match(err.message, pattern, `${what}: the error names what was refused`);
}

t.test('with access control on, every role does its job and a client can only query and read its own answers', async (t) => {
  const dataDir = tempDir(t, 'infaas-access-');
  const server = await startTestNats(t, { auth: ensureLocalCredentials(dataDir) });
  const controller = await connectAs(t, server.url, dataDir, 'controller');
  const registrar = await startRegistrar({ nc: controller.nc, stores: controller.stores, log: silentLogger });
  t.teardown(() => registrar.stop());
  const workerConn = await connectAs(t, server.url, dataDir, 'worker');
  const profiler = await startProfiler({ nc: workerConn.nc, stores: workerConn.stores, log: silentLogger, ...fastProfiler });
  t.teardown(() => profiler.stop());
  const worker = await startWorker({
    nc: workerConn.nc, stores: workerConn.stores, log: silentLogger, workerId: profiler.workerId, hardwareClass: fastProfiler.hardwareClass, threads: 2, autoscale: false,
  });
  t.teardown(() => worker.stop());
  const operator = await connectAs(t, server.url, dataDir, 'operator');
  await registerZooModel(new RegistryClient(operator.nc, operator.stores), 'mlp-small');
  const variant = 'mlp-small.fp32-all-b8-t1-cpu';
  await new WorkerClient(operator.nc).load(worker.id, variant);
  const dispatcher = await startDispatcher({ nc: controller.nc, stores: controller.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  // The VM-autoscaler's part of the controller's job: its lease in KV and the events it follows.
  const provisioner = { start: async () => 'worker-none', stop: async () => {}, managed: () => [], close: async () => {} };
  const vm = await startVmAutoscaler({
    nc: controller.nc, stores: controller.stores, log: silentLogger, controllerId: 'c1', provisioner, classes: [fastProfiler.hardwareClass!],
    windowMs: 200, settings: { minWorkers: 0, maxWorkers: 1 },
  });
  t.teardown(() => vm.stop());
  const client = await connectAs(t, server.url, dataDir, 'client');
  const qc = new QueryClient(client.nc);

  t.test('a client sends queries and gets answers and structured errors', async (t) => {
    const a = await qc.query({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 10_000 } });
    t.equal(a.variant, variant, 'served by the loaded variant, straight from the worker to the client inbox');
    t.equal(a.worker, worker.id);
    await rejectsWith(t, qc.query({ task: 'translation', inputs: { image }, slo: { latencyMs: 1000 } }), 'UNKNOWN_TASK', 'unknown task');
    const results = `${subjects.resultsPrefix}client.run1`;
    const answered = new Promise<QueryResult | InfaasError>((resolve) => { qc.results(results, resolve); });
    await client.nc.flush();
    qc.publish({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 10_000 }, resultSubject: results });
    const r = await answered;
    t.notOk(r instanceof InfaasError, 'an answer on its own result subject');
    t.equal((r as QueryResult).variant, variant);
  });

  t.test('a client credential cannot register, control a worker, write KV or publish to a worker', async (t) => {
    const rc = new RegistryClient(client.nc, undefined as unknown as Stores);
    await rejectsDenied(t, rc.models(), /may not publish to "infaas\.registry\.models"/, 'list models');
    await rejectsDenied(t, rc.unregister('mlp-small'), /may not publish to "infaas\.registry\.unregister"/, 'unregister');
    const wc = new WorkerClient(client.nc);
    await rejectsDenied(t, wc.load(worker.id, variant), new RegExp(`may not publish to "infaas\\.worker\\.${worker.id}\\.load"`), 'load');
    await rejectsDenied(t, wc.drain(worker.id), /may not publish to "infaas\.worker\..*\.drain"/, 'drain');
    await rejectsDenied(t, wc.unload(worker.id, { variant }), /may not publish to "infaas\.worker\..*\.unload"/, 'unload');
    await rejectsDenied(t, wc.infer(worker.id, { variant, inputs: { image } }), /may not publish to "infaas\.worker\..*\.infer"/, 'infer on a worker subject');
    await rejectsDenied(t, client.nc.request(subjects.profiler.generate, encodeJson({ model: 'mlp-small' })), /may not publish to "infaas\.profiler\.generate"/, 'generate variants');
    await rejectsDenied(t, client.nc.jetstream().views.kv(buckets.workers), /may not publish to "\$JS\.API\.INFO"/, 'open a KV bucket');
    const forged = encodeJson({ id: 'forged', hardwareClass: 'cpu-test', state: 'ready', heartbeatAt: new Date().toISOString() });
    await rejectsDenied(t, client.nc.jetstream().publish(`$KV.${buckets.workers}.forged`, forged), /may not publish to "\$KV\.infaas_workers\.forged"/, 'put a worker record');
    await rejectsDenied(t, client.nc.request(`$O.${buckets.repository}.M.x`, forged), /may not publish to "\$O\./, 'write the repository');
    await rejectsDenied(t, client.nc.request('$JS.API.STREAM.DELETE.KV_infaas_models', new Uint8Array()), /may not publish to "\$JS\.API\.STREAM\.DELETE/, 'delete a bucket');
    await rejectsDenied(t, client.nc.request('$SRV.PING', new Uint8Array()), /may not publish to "\$SRV\.PING"/, 'service discovery');
    t.equal(await operator.stores.workers.get(keys.worker('forged')), null, 'no forged worker record exists');
    t.notOk(client.nc.isClosed(), 'refusals do not close the connection');
  });

  t.test('a client credential cannot join a service queue group or read what is not its own', async (t) => {
    const cases: [string, string | undefined, RegExp][] = [
      [subjects.query, queueGroups.dispatchers, /may not subscribe to "infaas\.query" in queue group "infaas-dispatchers"/],
      [subjects.query, undefined, /may not subscribe to "infaas\.query"/],
      [subjects.registry.register, queueGroups.registry, /may not subscribe to "infaas\.registry\.register"/],
      [subjects.worker.infer(worker.id), 'q', /may not subscribe to "infaas\.worker\..*\.infer" in queue group "q"/],
      [subjects.allAcks, undefined, /may not subscribe to "infaas\.acks\.>"/],
      ['_INBOX.>', undefined, /may not subscribe to "_INBOX\.>"/],
      [`${subjects.resultsPrefix}>`, undefined, /may not subscribe to "infaas\.results\.>"/],
      ['$SRV.PING', undefined, /may not subscribe to "\$SRV\.PING"/],
    ];
    for (const [subject, queue, pattern] of cases) {
      const err = await refusedSubscription(client.nc, subject, queue);
      t.equal(err?.code, 'PERMISSION_DENIED', `subscribe ${subject}${queue ? ` (queue ${queue})` : ''}`);
      t.match(err?.message ?? '', pattern);
    }
    const other = await new Promise<QueryResult | InfaasError>((resolve) => { qc.results(`${subjects.resultsPrefix}operator.x`, resolve); });
    t.equal((other as InfaasError).code, 'PERMISSION_DENIED', "another user's result subject is refused, with the error handed to the caller");
    // Still served afterwards, and the queries still reach the dispatchers only.
    t.equal((await qc.query({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 10_000 } })).variant, variant);
  });

  t.test('a reply subject naming KV or a control subject is never answered', async (t) => {
    // nats-server does not check a publisher's reply subject; answers are sent with the service's permissions.
    const unknown = encodePayload({ task: 'nothing', inputs: { image }, slo: { latencyMs: 1000 } });
    client.nc.publish(subjects.query, unknown.data, { headers: unknown.headers, reply: `$KV.${buckets.models}.forged` });
    const served = encodePayload({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 10_000 } });
    client.nc.publish(subjects.query, served.data, { headers: served.headers, reply: `$KV.${buckets.workers}.forged2` });
    client.nc.publish(subjects.query, unknown.data, { headers: unknown.headers, reply: subjects.worker.drain(worker.id) });
    // Queries from one connection reach the dispatcher in order: once a later one is answered, these were handled.
    t.equal((await qc.query({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 10_000 } })).variant, variant);
    t.equal(await operator.stores.models.get('forged'), null, 'the dispatcher wrote no error into the models bucket');
    t.equal(await operator.stores.workers.get('forged2'), null, 'the worker wrote no answer into the workers bucket');
    t.equal((await new WorkerClient(operator.nc).instances(worker.id)).state, 'ready', 'and the worker was not drained');
  });

  t.test('a worker reads large repository objects (JetStream flow control) with its credential', async (t) => {
    const big = new Uint8Array(6 * 1024 * 1024).map((_, i) => i % 251);
    await putObject(operator.stores.repository, 'uploads/bigblob', big);
    const back = await objectBytes(workerConn.stores.repository, 'uploads/bigblob');
    t.equal(back.length, big.length);
    t.ok(back.every((b, i) => b === big[i]), 'same bytes');
    await operator.stores.repository.delete('uploads/bigblob');
  });

  t.test('the services were refused nothing they needed', async (t) => {
    t.same(controller.denied, [], 'controller (registrar, dispatcher)');
    t.same(workerConn.denied, [], 'worker (profiler, serving)');
    t.same(operator.denied, [], 'operator (registration, worker control, repository)');
  });
  t.test('service credentials are limited to their own jobs', async (t) => {
    const steal = await refusedSubscription(workerConn.nc, subjects.query, queueGroups.dispatchers);
    t.match(steal?.message ?? '', /may not subscribe to "infaas\.query" in queue group "infaas-dispatchers"/, 'a worker cannot take queries from the dispatchers');
    await rejectsDenied(t, workerConn.nc.request(subjects.registry.unregister, encodeJson({ name: 'mlp-small' })), /infaas\.registry\.unregister/, 'a worker cannot unregister');
    await rejectsDenied(t, workerConn.nc.jetstream().publish(`$KV.${buckets.models}.forged`, encodeJson({})), /\$KV\.infaas_models\.forged/, 'a worker cannot write model records');
    const impersonate = await refusedSubscription(controller.nc, subjects.worker.infer('w-fake'), 'q');
    t.match(impersonate?.message ?? '', /may not subscribe to "infaas\.worker\.w-fake\.infer"/, 'a controller cannot serve as a worker');
    await rejectsDenied(t, controller.nc.jetstream().publish(`$KV.${buckets.workers}.forged`, encodeJson({})), /\$KV\.infaas_workers\.forged/, 'a controller cannot write worker records');
    const share = await refusedSubscription(operator.nc, subjects.query, queueGroups.dispatchers);
    t.match(share?.message ?? '', /queue group "infaas-dispatchers"/, 'an operator reads but joins no queue group');
    const copy = new Promise<string>((resolve) => { operator.nc.subscribe(subjects.query, { max: 1, callback: (_e, m) => resolve(m.subject) }); });
    await operator.nc.flush();
    t.equal((await qc.query({ model: 'mlp-small', inputs: { image }, slo: { latencyMs: 10_000 } })).variant, variant, 'the query is still served by a dispatcher');
    t.equal(await copy, subjects.query, 'while the operator sees a copy');
  });

});

t.test('the embedded default (infaas up) turns access control on and every later command finds its credentials', async (t) => {
  const dataDir = tempDir(t, 'infaas-up-auth-');
  const stack = await startStack({
    log: silentLogger, dataDir, port: -1, controller: true, worker: true, name: 'up',
    profiler: fastProfiler, serving: { autoscale: false },
  });
  t.teardown(() => stack.stop());
  t.equal(stack.server?.authRequired, true, 'the embedded server checks credentials');
  t.equal(statSync(join(dataDir, 'credentials')).mode & 0o777, 0o700, 'credentials directory is private');
  for (const role of ['client', 'worker', 'controller', 'operator', 'stack'] as const) {
    t.equal(statSync(credentialFile(dataDir, role)).mode & 0o777, 0o600, `${role}.json is mode 0600`);
  }
  t.equal(statSync(join(dataDir, 'nats', 'auth.conf')).mode & 0o777, 0o600, "the server's config (with passwords) is mode 0600");

  await t.rejects(connectBus({ servers: stack.url, name: 'anon', log: silentLogger }), /refused a connection without credentials: give credentials with --credentials/, 'anonymous: refused, clearly');
  await t.rejects(connectBus({ servers: stack.url, name: 'bad', log: silentLogger, extra: { user: 'client', pass: 'wrong' } }), /refused user "client"/, 'a wrong password: refused, clearly');

  const again = await startStack({ log: silentLogger, dataDir, port: stack.server!.port, controller: false, worker: false, name: 'second' });
  t.teardown(() => again.stop());
  t.equal(again.server?.reused, true, 'a second command reuses the running server with the same credentials');
  t.same(await new RegistryClient(again.nc, again.stores).models(), [], 'and works as operator');

  const client = await connectBus({ servers: stack.url, name: 'client', log: silentLogger, extra: resolveAccess({ credentials: join(dataDir, 'credentials') }, 'client').options });
  t.teardown(() => client.close());
  await rejectsWith(t, new QueryClient(client).query({ task: 'nothing', inputs: { image }, slo: { latencyMs: 1000 } }), 'UNKNOWN_TASK', "a client credential (from the credentials directory) gets the stack's structured error");

  const stranger = tempDir(t, 'infaas-other-');
  await t.rejects(startStack({ log: silentLogger, dataDir: stranger, port: stack.server!.port, controller: false, worker: false }),
    /already listens at .* but refuses user "operator"/, 'another data directory: a clear error, not a second server on the port');

  const cli = (args: string[], dir: string) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, INFAAS_DATA_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  const models = await cli(['models', '-s', stack.url], dataDir);
  t.equal(models.code, 0, `the CLI reads the data directory's credentials: ${models.stderr}`);
  const refused = await cli(['models', '-s', stack.url], tempDir(t, 'infaas-none-'));
  t.equal(refused.code, 1);
  t.match(refused.stderr, /refused a connection without credentials/, 'without them, it says what to do');
  const flags = await cli(['credentials', 'client', '--nats-flags'], dataDir);
  t.match(flags.stdout, /^--user client --password \S+ --inbox-prefix _INBOX\.client\n$/, 'flags for the nats CLI');

  // A worker that cannot start (here: a client's credentials) says why and exits: what it had
  // opened (its connection) is closed, so nothing keeps the process alive.
  const worker = await cli(['worker', '-s', stack.url, '--credentials', credentialFile(dataDir, 'client')], dataDir);
  t.equal(worker.code, 1, 'a worker that fails to start exits with 1');
  t.match(worker.stderr, /error PERMISSION_DENIED: permission denied: this NATS user may not publish to "\$JS\.API\.INFO"/, `and says why: ${worker.stderr.trim().split('\n').slice(-1)[0]}`);
});

const noOpenssl = spawnSync('openssl', ['version']).status !== 0;

t.test('TLS with certificates made for the test', { skip: noOpenssl ? 'openssl is not installed' : false }, async (t) => {
  const dir = tempDir(t, 'infaas-tls-');
  const openssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=infaas test CA');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  spawnSync('sh', ['-c', "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.cnf"], { cwd: dir });
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.cnf');

  const dataDir = join(dir, 'data');
  const server = await startTestNats(t, { auth: ensureLocalCredentials(dataDir), tls: { certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') } });
  const client = await connectAs(t, server.url, dataDir, 'client', { caFile: join(dir, 'ca.pem') });
  t.equal(client.nc.info?.tls_required, true, 'the server requires TLS');
  await rejectsWith(t, new QueryClient(client.nc).query({ task: 'x', inputs: { image }, slo: { latencyMs: 1000 } }, { retry: false }), 'NO_WORKER', 'a query travels over TLS (nothing serves it here)');
  await t.rejects(connectBus({ servers: server.url, name: 'untrusted', log: silentLogger, extra: { ...resolveAccess({ credentials: credentialFile(dataDir, 'client') }, 'client').options, maxReconnectAttempts: 0 } }),
    'without trusting the CA the connection fails');
});

t.test('which reply subjects a dispatcher answers, and where data-directory credentials go unasked', async (t) => {
  for (const s of ['_INBOX.client.abc.1', '_INBOX.xyz', 'infaas.results.client.run1', 'myapp.replies.7']) t.ok(isAnswerSubject(s), `answers ${s}`);
  for (const s of ['$KV.infaas_workers.x', '$JS.API.STREAM.DELETE.KV_infaas_models', '$SRV.PING', 'infaas.worker.w1.drain', 'infaas.registry.unregister', 'infaas.query', 'infaas.acks.c1.1', '']) {
    t.notOk(isAnswerSubject(s), `never answers "${s}"`);
  }
  for (const u of ['nats://127.0.0.1:4222', 'localhost:4222', 'nats://localhost:1,nats://127.0.0.2:2']) t.ok(isLoopbackUrl(u), `${u} is this machine`);
  for (const u of ['nats://10.0.0.5:4222', 'tls://nats.example.com:4222', 'nats://127.0.0.1:1,nats://10.0.0.1:2']) t.notOk(isLoopbackUrl(u), `${u} is not`);
});
