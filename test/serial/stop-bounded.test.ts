// Stopping is bounded: a controller or worker process told to stop exits whether or not its NATS
// server is still there, and a second signal exits at once. Real processes, a real nats-server.
// The bounds are generous outcome checks (the process must exit), not latency targets.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startTestNats } from '../helpers/system.js';

const BIN = new URL('../../bin/infaas.js', import.meta.url).pathname;
/** Far above the stated bound (docs/worker.md, "Stopping": 15 s): only a hang fails. */
const EXIT_BOUND_MS = 20_000;

interface Proc { child: ChildProcess; stdout: string; stderr: string; exit: Promise<{ code: number | null; signal: string | null }> }

function startProcess(t: Test, args: string[]): Proc {
  const dataDir = mkdtempSync(join(tmpdir(), 'infaas-stop-'));
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INFAAS_DATA_DIR: dataDir, INFAAS_LOG_LEVEL: 'warn' },
  });
  const p: Proc = {
    child, stdout: '', stderr: '',
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (b: Buffer) => { p.stdout += b; });
  child.stderr!.on('data', (b: Buffer) => { p.stderr += b; });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  return p;
}

/** Resolves when the process has printed `pattern` (stdout or its JSON log on stderr). */
function printed(p: Proc, pattern: RegExp, withinMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pattern.test(p.stdout) || pattern.test(p.stderr)) { done(); resolve(); }
    };
    const timer = setTimeout(() => { done(); reject(new Error(`no ${pattern} within ${withinMs} ms; stdout: ${p.stdout} stderr: ${p.stderr.slice(-2000)}`)); }, withinMs);
    const done = () => { clearTimeout(timer); p.child.stdout!.off('data', check); p.child.stderr!.off('data', check); };
    p.child.stdout!.on('data', check);
    p.child.stderr!.on('data', check);
    check();
  });
}

/** Time from `signal` to the process's exit, or undefined when it did not exit within the bound. */
async function exitAfter(p: Proc, signal: NodeJS.Signals): Promise<{ ms?: number; code: number | null; signal: string | null }> {
  const sent = Date.now();
  p.child.kill(signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([p.exit, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), EXIT_BOUND_MS); })]);
  clearTimeout(timer);
  return r ? { ms: Date.now() - sent, ...r } : { code: null, signal: null };
}

const roles: [string, (url: string) => string[]][] = [
  ['worker', (url) => ['worker', '-s', url, '--threads', '1', '--hardware-class', 'cpu-test']],
  ['controller', (url) => ['controller', '-s', url]],
];

for (const [role, args] of roles) {
  t.test(`a ${role} whose nats-server has stopped exits on SIGTERM`, async (t) => {
    const server = await startTestNats(t);
    const p = startProcess(t, args(server.url));
    await printed(p, /Ctrl-C to stop/);
    await server.stop();
    await printed(p, /"status":"disconnect"/);
    const r = await exitAfter(p, 'SIGTERM');
    t.ok(r.ms !== undefined, `exited ${r.ms === undefined ? 'NOT within 20 s' : `after ${r.ms} ms`}`);
    t.equal(r.code, 0, 'a completed stop exits 0');
    t.match(p.stderr, /"msg":"stopped"/, 'it logged the end of its stop');
  });

  t.test(`a ${role} with its nats-server up exits on SIGINT`, async (t) => {
    const server = await startTestNats(t);
    const p = startProcess(t, args(server.url));
    await printed(p, /Ctrl-C to stop/);
    const r = await exitAfter(p, 'SIGINT');
    t.ok(r.ms !== undefined, `exited ${r.ms === undefined ? 'NOT within 20 s' : `after ${r.ms} ms`}`);
    t.equal(r.code, 0);
    t.notMatch(p.stderr, /did not finish in time|without a drain/, 'nothing was cut short');
  });
}

t.test('a second signal while stopping exits at once', async (t) => {
  const server = await startTestNats(t);
  const p = startProcess(t, ['worker', '-s', server.url, '--threads', '1', '--hardware-class', 'cpu-test']);
  await printed(p, /Ctrl-C to stop/);
  // With the server gone the stop waits out its bus budget: time for a second signal to land.
  await server.stop();
  await printed(p, /"status":"disconnect"/);
  p.child.kill('SIGTERM');
  await printed(p, /SIGTERM: stopping/);
  const r = await exitAfter(p, 'SIGINT');
  t.ok(r.ms !== undefined, `exited ${r.ms === undefined ? 'NOT within 20 s' : `after ${r.ms} ms`}`);
  t.equal(r.code, 130, 'the second signal\'s exit (128 + SIGINT), not the completed stop\'s 0');
  t.match(p.stderr, /second signal while stopping/);
});
