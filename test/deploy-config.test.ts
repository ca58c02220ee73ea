// The cluster configuration generator and the deployment description: pure, no server. The launch
// scripts' idempotence runs here too, with the local transport and `sleep` as the process.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { natsClusterConfig, replicasFor, clusterUrls } from '../cluster/nats-cluster.js';
import { DeploymentSpecError, deploymentProcesses, natsNodes, parseDeployment } from '../cluster/deploy-spec.js';
import { startScript, startScripts, statusScript, stopScript } from '../cluster/deploy.js';
import { localTransport } from '../cluster/deploy-transport.js';

const nodes = [1, 2, 3].map((i) => ({ name: `n${i}`, address: `10.0.0.${i}`, storeDir: `/var/lib/nats/n${i}` }));

t.test('each node gets its name, listeners, store and routes to the others', async (t) => {
  const cs = natsClusterConfig({ cluster: 'prod', nodes });
  t.equal(cs.length, 3);
  const n1 = cs[0]!.text;
  t.match(n1, /server_name: "n1"/);
  t.match(n1, /listen: "10\.0\.0\.1:4222"/);
  t.match(n1, /http: "10\.0\.0\.1:8222"/);
  t.match(n1, /store_dir: "\/var\/lib\/nats\/n1"/);
  t.match(n1, /name: "prod"/);
  t.match(n1, /routes: \["nats:\/\/10\.0\.0\.2:6222", "nats:\/\/10\.0\.0\.3:6222"\]/);
  t.notMatch(n1, /authorization/);
  t.equal(cs[1]!.url, 'nats://10.0.0.2:4222');
  t.equal(clusterUrls({ nodes }), 'nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222');
});

t.test('routes and clients authenticate when asked', async (t) => {
  const [c] = natsClusterConfig({
    cluster: 'prod', nodes, routeAuth: { user: 'route', password: 'p/w' },
    auth: [{ role: 'client', user: 'alice', password: 'secret', inboxPrefix: '_INBOX.alice' }],
  });
  t.match(c!.text, /routes: \["nats:\/\/route:p%2Fw@10\.0\.0\.2:6222"/);
  t.match(c!.text, /authorization \{\n {4}user: "route"/);
  t.match(c!.text, /"user": "alice"/);
});

t.test('nodes sharing an address need their own ports; names are unique', async (t) => {
  const loop = [1, 2].map((i) => ({ name: `n${i}`, address: '127.0.0.1', storeDir: `/tmp/n${i}` }));
  t.throws(() => natsClusterConfig({ cluster: 'c', nodes: loop }), /127\.0\.0\.1:4222 is used twice/);
  t.throws(() => natsClusterConfig({ cluster: 'c', nodes: [nodes[0]!, nodes[0]!] }), /used twice/);
  const ok = natsClusterConfig({ cluster: 'c', nodes: loop.map((n, i) => ({ ...n, port: 4300 + i, clusterPort: 6300 + i, monitorPort: 8300 + i })) });
  t.match(ok[0]!.text, /routes: \["nats:\/\/127\.0\.0\.1:6301"\]/);
});

t.test('three or more nodes: 3 replicas', async (t) => {
  t.same([1, 2, 3, 5].map(replicasFor), [1, 1, 3, 3]);
});

const example = {
  name: 'demo',
  hosts: [
    { name: 'a', address: '10.0.0.1', roles: [{ role: 'nats' }, { role: 'controller' }] },
    { name: 'b', address: '10.0.0.2', roles: [{ role: 'nats' }, { role: 'worker', hardwareClass: 'cpu-2t', price: 0.096 }, { role: 'worker', hardwareClass: 'cpu-2t' }] },
    { name: 'c', address: '10.0.0.3', roles: [{ role: 'nats' }] },
  ],
};

t.test('a hosts file names its processes and nodes', async (t) => {
  const spec = parseDeployment(example);
  t.same(deploymentProcesses(spec).map((p) => p.name), ['nats-a', 'controller-a', 'nats-b', 'worker-b-1', 'worker-b-2', 'nats-c']);
  t.same(natsNodes(spec).map((n) => n.storeDir), ['.infaas-deploy/demo/nats-a/jetstream', '.infaas-deploy/demo/nats-b/jetstream', '.infaas-deploy/demo/nats-c/jetstream']);
});

t.test('a bad hosts file is refused with what is wrong', async (t) => {
  t.throws(() => parseDeployment({ name: 'x', hosts: [] }), DeploymentSpecError);
  t.throws(() => parseDeployment({ name: 'x', hosts: [{ name: 'a', address: 'a', roles: [{ role: 'worker' }] }] }), /hardwareClass is required/);
  t.throws(() => parseDeployment({ name: 'x', hosts: [{ name: 'a', address: 'a', roles: [{ role: 'controller' }] }] }), /needs at least one nats role/);
  t.throws(() => parseDeployment({ name: 'x', hosts: [{ name: 'a', address: 'a', roles: [{ role: 'db' }] }] }), /must be nats, controller or worker/);
});

t.test('start scripts: a worker connects to its own host\'s node first, with replicas and its credential', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'infaas-deploy-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const scripts = startScripts(parseDeployment(example), dir);
  const w = scripts.get('worker-b-1')!;
  t.match(w, /worker -s 'nats:\/\/10\.0\.0\.2:4222,nats:\/\/10\.0\.0\.1:4222,nats:\/\/10\.0\.0\.3:4222' '--id' 'worker-b-1' '--hardware-class' 'cpu-2t' '--price' '0\.096'/);
  t.match(w, /INFAAS_REPLICAS='3'/);
  t.match(w, /INFAAS_NATS_CREDENTIALS="\$D\/worker\.json"/);
  t.match(scripts.get('nats-a')!, /nats-server -c "\$D\/nats\.conf"/);
  t.match(scripts.get('nats-a')!, /authorization/);
  t.notMatch(startScripts(parseDeployment({ ...example, auth: false }), dir).get('nats-a')!, /authorization/);
});

t.test('the scripts are idempotent: start twice runs one process; stop stops it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'infaas-deploy-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const host = { name: 'here', address: '127.0.0.1', roles: [] };
  const tr = localTransport();
  const first = await tr.run(host, startScript(join(dir, 'p'), [{ name: 'f.txt', text: 'x' }], 'sleep 60'));
  t.match(first.stdout, /^started \d+/);
  const second = await tr.run(host, startScript(join(dir, 'p'), [], 'sleep 60'));
  t.equal(second.stdout.trim(), `running ${first.stdout.trim().split(' ')[1]}`);
  t.match((await tr.run(host, statusScript(join(dir, 'p')))).stdout, /^running/);
  t.equal((await tr.run(host, stopScript(join(dir, 'p'), 5))).stdout.trim(), 'stopped');
  t.equal((await tr.run(host, stopScript(join(dir, 'p'), 5))).stdout.trim(), 'not running');
  t.equal((await tr.run(host, statusScript(join(dir, 'p')))).stdout.trim(), 'stopped');
  const failing = await tr.run(host, startScript(join(dir, 'q'), [], 'sh -c "echo no such thing; exit 3"'));
  t.equal(failing.code, 1);
  t.match(failing.stdout, /failed\nno such thing/, 'a process that exits at once is reported failed, with its log');
});

t.test('a single node runs standalone JetStream: no cluster block (nats-server refuses one without routes)', async (t) => {
  const [c] = natsClusterConfig({ cluster: 'one', nodes: [nodes[0]!] });
  t.match(c!.text, /jetstream \{\n {2}store_dir:/);
  t.notMatch(c!.text, /cluster \{/);
  t.notMatch(c!.text, /routes:/);
});
