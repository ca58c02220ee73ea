// The ssh transport for real: an sshd of the test's own (its own host key, port and authorized key,
// on 127.0.0.1) stands in for a remote host, and `infaas deploy up|status|down` runs over it as the
// docs show for real hosts (--ssh-option for the key); a zoo model registers and serves through the
// deployment. Where sshd is not installed or cannot start, the test says so and is skipped.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { BIN, runInfaas } from '../helpers/cli.js';
import { resolveAccess } from '../../runtime/bus/auth.js';
import { closeBus, connectBus } from '../../runtime/bus/nats.js';
import { openStores } from '../../runtime/bus/store.js';
import { silentLogger } from '../../runtime/log.js';
import { RegistryClient } from '../../runtime/client/registry-client.js';
import { QueryClient } from '../../runtime/client/query-client.js';
import { arrayToTensor } from '../../runtime/bus/codec.js';
import { loadSplit } from '../../zoo/data.js';
import { ZOO_TASK } from '../../zoo/index.js';
import { registerZooModelWhenServed } from '../helpers/zoo.js';
import { untilServing } from '../helpers/system.js';
import { freePort } from '../helpers/hosts.js';

const SSHD = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((p) => existsSync(p));

/** Starts sshd on 127.0.0.1:port for this user's key; resolves once it listens, or with why it could not. */
async function startSshd(dir: string, port: number): Promise<{ child: ChildProcess } | { why: string }> {
  const keygen = (file: string) => spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file], { encoding: 'utf8' });
  for (const k of ['host_key', 'user_key']) {
    const r = keygen(join(dir, k));
    if (r.status !== 0) return { why: `ssh-keygen failed: ${r.stderr || r.error?.message}` };
  }
  spawnSync('cp', [join(dir, 'user_key.pub'), join(dir, 'authorized_keys')]);
  // Privilege separation needs this directory (systemd or the package's init script makes it).
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'PubkeyAuthentication yes', 'LogLevel ERROR',
  ].join('\n') + '\n');
  const child = spawn(SSHD!, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b; });
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) return { why: `sshd exited ${child.exitCode}: ${stderr.trim()}` };
    const probe = spawnSync('ssh', [...sshOptions(dir, port), `${userInfo().username}@127.0.0.1`, 'true'], { encoding: 'utf8', timeout: 5000 });
    if (probe.status === 0) return { child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  return { why: `sshd did not accept the test's key in 5 s: ${stderr.trim()}` };
}

const sshOptions = (dir: string, port: number) => [
  '-o', 'BatchMode=yes', '-p', String(port), '-i', join(dir, 'user_key'),
  '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
];

const NO_SSHD = 'sshd is not installed here (Debian: openssh-server, as .ci/run installs): the ssh transport is not exercised';

t.test('infaas deploy over ssh: up, serve, status, down', { skip: SSHD ? false : NO_SSHD }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'infaas-ssh-'));
  const cleanups: (() => unknown)[] = [() => rmSync(root, { recursive: true, force: true })];
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const sshPort = await freePort();
  const sshd = await startSshd(root, sshPort);
  if ('why' in sshd) {
    t.skip(`sshd could not start here (${sshd.why}): the ssh transport is not exercised`, () => {});
    return;
  }
  cleanups.push(() => sshd.child.kill('SIGTERM'));
  const [port, clusterPort, monitorPort] = [await freePort(), await freePort(), await freePort()];
  const destination = `${userInfo().username}@127.0.0.1`;
  const hostsFile = join(root, 'hosts.json');
  writeFileSync(hostsFile, JSON.stringify({
    name: 'sshtest', infaas: `${process.execPath} ${BIN}`, env: { INFAAS_LOG_LEVEL: 'info' },
    hosts: [{
      name: 'a', address: '127.0.0.1', ssh: destination, dir: join(root, 'a'),
      roles: [{ role: 'nats', port, clusterPort, monitorPort }, { role: 'controller' }, { role: 'worker', hardwareClass: 'cpu-1t', threads: 1, price: 0.048 }],
    }],
  }, null, 1));
  const stateDir = join(root, 'state');
  const flags = [...sshOptions(root, sshPort).map((o) => `--ssh-option=${o}`), '--state-dir', stateDir];
  const deploy = (cmd: string) => runInfaas(['deploy', cmd, hostsFile, ...flags]);
  cleanups.push(() => deploy('down'));

  const up = await deploy('up');
  t.equal(up.code, 0, `deploy up over ssh: ${up.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  if (up.code !== 0) {
    for (const p of ['nats-a', 'controller-a', 'worker-a-1']) {
      const f = join(root, 'a', p, 'log');
      if (existsSync(f)) t.comment(`${p}: ${readFileSync(f, 'utf8').trim().split('\n').slice(-4).join(' | ').slice(0, 600)}`);
    }
  }
  t.match(up.stdout, /nats-a\s+.*started/, 'the NATS node started');
  t.match(up.stdout, /controller-a\s+.*started/, 'the controller started');
  t.match(up.stdout, /worker-a-1\s+.*started/, 'the worker started');

  const access = resolveAccess({ credentials: join(stateDir, 'credentials') }, 'stack');
  const nc = await connectBus({ servers: `nats://127.0.0.1:${port}`, name: 'ssh-test', log: silentLogger, extra: access.options });
  cleanups.push(() => closeBus(nc));
  const stores = await openStores(nc);
  const client = new RegistryClient(nc, stores);
  const info = await registerZooModelWhenServed(client, 'mlp-small');
  t.ok(info.variants.length > 0, `mlp-small registered with ${info.variants.length} variants through the deployment`);
  await untilServing(nc, 1000);
  const { images } = loadSplit('validation', 1);
  const answer = await new QueryClient(nc).query({ task: ZOO_TASK, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], images) }, slo: { latencyMs: 5000 } });
  t.equal(answer.worker, 'worker-a-1', 'a query is served by the worker started over ssh');

  const status = await deploy('status');
  t.equal(status.code, 0, status.stderr);
  t.equal((status.stdout.match(/running/g) ?? []).length, 3, 'status over ssh: three processes running');

  await closeBus(nc);
  const down = await deploy('down');
  t.equal(down.code, 0, down.stderr);
  t.equal((down.stdout.match(/stopped/g) ?? []).length, 3, 'down over ssh stops all three');
  const after = await deploy('status');
  t.equal((after.stdout.match(/running/g) ?? []).length, 0, 'nothing runs after down');
});
