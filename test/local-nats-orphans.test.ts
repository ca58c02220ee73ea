// The embedded nats-server never outlives the process that started it: a watchdog stops it when
// that process is SIGKILLed, and a server left on a store by a dead process is stopped at the next start.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { findNatsServer, startLocalNats } from '../runtime/bus/local-nats.js';
import { silentLogger } from '../runtime/log.js';

const CHILD = new URL('./helpers/local-nats-child.ts', import.meta.url).pathname;

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Polls a process table fact (no event exists for another process's end); generous bound. */
async function gone(pid: number, withinMs = 20_000): Promise<boolean> {
  for (const end = Date.now() + withinMs; Date.now() < end; await sleep(50)) if (!alive(pid)) return true;
  return false;
}

function tempStore(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'infaas-orphan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b; if (out.includes('\n')) resolve(out.split('\n')[0]!); });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before printing its URL`)));
  });
}

t.test('a server whose starting process is SIGKILLed stops too', async (t) => {
  const dir = tempStore(t);
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  t.match(await firstLine(child), /^nats:\/\//);
  const server = Number(readFileSync(join(dir, 'nats-server.pid'), 'utf8'));
  t.ok(alive(server), 'the server runs');
  child.kill('SIGKILL');
  t.ok(await gone(server), 'the server is gone once its parent was killed');
});

t.test('a server left on the store by a process that is gone is stopped at the next start', async (t) => {
  const dir = tempStore(t);
  // A parent that no longer exists: a short-lived process's pid.
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => dead.once('exit', resolve));
  const orphan = spawn(findNatsServer()!, ['-a', '127.0.0.1', '-p', '-1', '-js', '-sd', dir, '-n', `infaas-local-${dead.pid}`, '-P', join(dir, 'nats-server.pid')], { stdio: 'ignore' });
  t.teardown(() => { if (orphan.exitCode === null) orphan.kill('SIGKILL'); });
  const exited = new Promise((resolve) => orphan.once('exit', resolve));
  for (let i = 0; i < 200; i++) {
    try { if (Number(readFileSync(join(dir, 'nats-server.pid'), 'utf8')) === orphan.pid) break; } catch { /* not written yet */ }
    await sleep(25);
  }
  const server = await startLocalNats({ storeDir: dir, port: -1, log: silentLogger, install: false });
  t.teardown(() => server.stop());
  await exited;
  t.equal(orphan.exitCode !== null || orphan.signalCode !== null, true, 'the orphan was stopped');
  t.not(Number(readFileSync(join(dir, 'nats-server.pid'), 'utf8')), orphan.pid, 'a new server owns the store');
});

t.test('stop() returns once the server has exited', async (t) => {
  const dir = tempStore(t);
  const server = await startLocalNats({ storeDir: dir, port: -1, log: silentLogger, install: false });
  const pid = Number(readFileSync(join(dir, 'nats-server.pid'), 'utf8'));
  await server.stop();
  t.notOk(alive(pid), 'no server left');
});
