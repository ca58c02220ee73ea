// Several "hosts" on one machine for deployment tests: network namespaces joined by a bridge
// (veth links, addresses of our own choosing), or, where namespaces cannot be made, loopback ports.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

export interface TestHost { name: string; address: string; netns?: string; ports: { port: number; clusterPort: number; monitorPort: number } }

export interface TestHosts {
  hosts: TestHost[];
  /** How they were made, for the test's output. */
  how: string;
  remove(): void;
}

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * `n` namespaces ifs<id>-h<i> with addresses 10.213.<k>.<10+i>/24 on a bridge ifsb<id> at .1, so
 * this process (the launcher) reaches every host and every host the others. Throws with the
 * reason when any step fails (after removing what it made).
 */
function makeNamespaces(n: number): TestHosts {
  const id = String(process.pid % 100000);
  const k = 20 + (process.pid % 200);
  const bridge = `ifsb${id}`;
  const names = Array.from({ length: n }, (_, i) => `ifs${id}-h${i + 1}`);
  const remove = () => {
    for (const ns of names) ip(['netns', 'del', ns]);
    ip(['link', 'del', bridge]);
  };
  const steps: string[][] = [
    ['link', 'add', bridge, 'type', 'bridge'], ['addr', 'add', `10.213.${k}.1/24`, 'dev', bridge], ['link', 'set', bridge, 'up'],
  ];
  names.forEach((ns, i) => {
    const veth = `ifsv${id}-${i + 1}`;
    steps.push(
      ['netns', 'add', ns], ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns], ['link', 'set', veth, 'master', bridge, 'up'],
      ['-n', ns, 'addr', 'add', `10.213.${k}.${11 + i}/24`, 'dev', 'eth0'], ['-n', ns, 'link', 'set', 'eth0', 'up'], ['-n', ns, 'link', 'set', 'lo', 'up'],
    );
  });
  for (const s of steps) {
    const r = ip(s);
    if (!r.ok) {
      remove();
      throw new Error(`ip ${s.join(' ')}: ${r.err || 'failed'}`);
    }
  }
  return {
    hosts: names.map((ns, i) => ({ name: `h${i + 1}`, address: `10.213.${k}.${11 + i}`, netns: ns, ports: { port: 4222, clusterPort: 6222, monitorPort: 8222 } })),
    how: `network namespaces ${names.join(', ')} on bridge ${bridge} (10.213.${k}.0/24)`,
    remove,
  };
}

/** Namespaced hosts where this process may make them (root, iproute2); else loopback hosts with free ports, saying why. */
export async function makeTestHosts(n: number, o: { netns?: boolean } = {}): Promise<TestHosts> {
  try {
    if (o.netns === false) throw new Error('turned off for this run');
    if (process.getuid?.() !== 0) throw new Error('not root');
    return makeNamespaces(n);
  } catch (err) {
    const hosts: TestHost[] = [];
    for (let i = 0; i < n; i++) hosts.push({ name: `h${i + 1}`, address: '127.0.0.1', ports: { port: await freePort(), clusterPort: await freePort(), monitorPort: await freePort() } });
    return { hosts, how: `network namespaces unavailable (${(err as Error).message}); using loopback ports`, remove: () => {} };
  }
}
