// The embedded local NATS: finds (or installs) nats-server and runs it with JetStream in our data dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type ConnectionOptions } from 'nats';
import type { Logger } from '../log.js';
import { serverAuthConfig, type Credential } from './auth.js';
import { checkMaxPayload, DEFAULT_MAX_PAYLOAD, MAX_MAX_PAYLOAD } from './max-payload.js';

export const INSTALL_COMMAND = 'apt-get update && apt-get install -y nats-server';

export class NatsServerMissingError extends Error {
  readonly code = 'NATS_SERVER_MISSING';
  constructor() {
    super(`nats-server is not installed. Install it with:\n  sudo sh -c '${INSTALL_COMMAND}'`);
    this.name = 'NatsServerMissingError';
  }
}

export function findNatsServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin'];
  for (const d of dirs) {
    const p = join(d, 'nats-server');
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

/** Returns the nats-server path, installing the Debian package first when we are root. */
export function ensureNatsServer(log: Logger, install = true): string {
  const found = findNatsServer();
  if (found) return found;
  if (!install || typeof process.getuid !== 'function' || process.getuid() !== 0) throw new NatsServerMissingError();
  log.warn({ command: INSTALL_COMMAND }, 'nats-server missing: installing the Debian package');
  const r = spawnSync('sh', ['-c', INSTALL_COMMAND], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const after = findNatsServer();
  if (r.status !== 0 || !after) throw new NatsServerMissingError();
  return after;
}

export { checkMaxPayload, DEFAULT_MAX_PAYLOAD, MAX_MAX_PAYLOAD };

export interface LocalNatsOptions {
  /** JetStream store directory (created if missing). */
  storeDir: string;
  /** TCP port; -1 picks a free one (tests). Default 4222. */
  port?: number;
  /** Listen address; loopback unless told otherwise. */
  host?: string;
  log: Logger;
  install?: boolean;
  /**
   * Turn authorization on with these users (each with its role's permissions; runtime/bus/auth.ts).
   * The server's config file, passwords included, is written to the store dir with mode 0600.
   */
  auth?: readonly Credential[];
  /** Serve TLS only, with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
  /** How to connect when probing a server already listening (its credentials, TLS trust). */
  connect?: Partial<ConnectionOptions>;
  /**
   * Max payload in bytes (headers included) the server accepts per message; default
   * DEFAULT_MAX_PAYLOAD, 1 KiB to 64 MiB. A reused server keeps its own (a warning says so).
   */
  maxPayload?: number;
}

export interface LocalNats {
  url: string;
  port: number;
  /** True when we found a server already listening and reuse it instead of starting one. */
  reused: boolean;
  /** Whether the server checks who connects (a reused one says so in its INFO). */
  authRequired: boolean;
  /** The largest message it takes (its INFO's max_payload when reused). */
  maxPayload: number;
  stop(): Promise<void>;
}

/**
 * Whether a NATS server answers at `url` (and whether it requires authorization). A server that
 * answers but refuses our credentials is up too: that is an error to report, not a port to take.
 */
async function probeNats(url: string, options: Partial<ConnectionOptions> = {}): Promise<{ up: boolean; authRequired: boolean; maxPayload?: number }> {
  try {
    const nc = await connect({ ...options, servers: url, timeout: 1000, maxReconnectAttempts: 0 });
    const authRequired = nc.info?.auth_required === true;
    const maxPayload = nc.info?.max_payload;
    await nc.close();
    return { up: true, authRequired, ...(maxPayload ? { maxPayload } : {}) };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'AUTHORIZATION_VIOLATION') {
      throw new Error(`a NATS server already listens at ${url} but refuses ${options.user ? `user "${options.user}"` : 'connections without credentials'}: `
        + 'it was started with other credentials (another data directory?); stop it, or connect to it with its credentials (docs/security.md)');
    }
    return { up: false, authRequired: false };
  }
}

function readPort(portsDir: string): number | undefined {
  for (const f of readdirSync(portsDir)) {
    if (!f.endsWith('.ports')) continue;
    const doc = JSON.parse(readFileSync(join(portsDir, f), 'utf8')) as { nats?: string[] };
    const url = doc.nats?.[0];
    if (url) return Number(new URL(url).port);
  }
  return undefined;
}

/**
 * Runs nats-server under a small sh watchdog that holds a pipe from this process: when we end in
 * any way, SIGKILL included, the kernel closes the pipe, the watchdog reads EOF and stops the
 * server. (Linux's PR_SET_PDEATHSIG would do it too, but Node cannot set it without an addon.)
 * Closing the pipe is also how stop() asks for a graceful stop; sh exits when the server has.
 */
const WATCHDOG = [
  'exec 3<&0',
  '"$@" 0</dev/null 3<&- & s=$!',
  '(while read -r line <&3; do :; done; kill -TERM "$s" 2>/dev/null) 0</dev/null & w=$!',
  'exec 3<&-',
  'wait "$s"; c=$?',
  'kill "$w" 2>/dev/null',
  'exit "$c"',
].join('\n');

const PID_FILE = 'nats-server.pid';

/**
 * A server left running on this store by a process that is gone (from before the watchdog, or
 * whose watchdog was killed too) holds the store's lock: stop it. Its name carries its parent's pid.
 */
async function stopOrphanedServer(storeDir: string, log: Logger): Promise<void> {
  const pidFile = join(storeDir, PID_FILE);
  if (!existsSync(pidFile) || !existsSync('/proc')) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const cmdline = Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') : [];
  const parent = Number(/^infaas-local-(\d+)$/.exec(cmdline.find((a) => a.startsWith('infaas-local-')) ?? '')?.[1]);
  const ours = cmdline.some((a) => a.endsWith('nats-server')) && cmdline.includes(storeDir);
  if (ours && parent > 0 && !isAlive(parent)) {
    log.warn({ pid, parent, storeDir }, 'stopping a nats-server left behind by a process that is gone');
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 200 && isAlive(pid); i++) await sleep(25);
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  if (!ours || !isAlive(pid)) rmSync(pidFile, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function startLocalNats(options: LocalNatsOptions): Promise<LocalNats> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 4222;
  const maxPayload = checkMaxPayload(options.maxPayload ?? DEFAULT_MAX_PAYLOAD);
  await stopOrphanedServer(options.storeDir, options.log);
  const probe = port > 0 ? await probeNats(`nats://${host}:${port}`, options.connect) : { up: false, authRequired: false };
  if (probe.up) {
    const theirs = probe.maxPayload ?? maxPayload;
    options.log.info({ port, authRequired: probe.authRequired, maxPayload: theirs }, 'reusing the NATS server already listening');
    if (options.auth && !probe.authRequired) options.log.warn({ port }, 'the NATS server already listening does not check credentials: anyone who can reach it may do anything');
    if (theirs !== maxPayload) options.log.warn({ port, maxPayload: theirs, asked: maxPayload }, 'the NATS server already listening keeps its own max payload: restart it to change it');
    return { url: `nats://${host}:${port}`, port, reused: true, authRequired: probe.authRequired, maxPayload: theirs, stop: async () => {} };
  }
  const bin = ensureNatsServer(options.log, options.install ?? true);
  mkdirSync(options.storeDir, { recursive: true });
  const portsDir = join(options.storeDir, 'ports');
  rmSync(portsDir, { recursive: true, force: true });
  mkdirSync(portsDir, { recursive: true });
  // Command-line flags win over the config file, which holds only what has no flag: the max
  // payload, and the authorization block (in its own file, mode 0600: it holds passwords).
  const conf = join(options.storeDir, 'server.conf');
  const lines = [`max_payload: ${maxPayload}`];
  if (options.auth) {
    const authConf = join(options.storeDir, 'auth.conf');
    rmSync(authConf, { force: true });
    writeFileSync(authConf, serverAuthConfig(options.auth), { mode: 0o600 });
    lines.push('include ./auth.conf');
  }
  writeFileSync(conf, lines.join('\n') + '\n');
  const args = ['-a', host, '-p', String(port), '-js', '-sd', options.storeDir, '--ports_file_dir', portsDir, '-n', `infaas-local-${process.pid}`, '-P', join(options.storeDir, PID_FILE), '-c', conf];
  if (options.tls) args.push('--tls', '--tlscert', options.tls.certFile, '--tlskey', options.tls.keyFile);
  // Own process group: a Ctrl-C at the terminal must reach us (we drain, then stop the server),
  // not kill the server under our feet. If we die, the watchdog (or the exit hook) takes it down.
  const child: ChildProcess = spawn('sh', ['-c', WATCHDOG, 'nats-server-watchdog', bin, ...args], { stdio: ['pipe', 'ignore', 'pipe'], detached: true });
  child.stdin?.on('error', () => {});
  const killGroup = (signal: NodeJS.Signals) => { try { process.kill(-child.pid!, signal); } catch { /* already gone */ } };
  const killOnExit = () => killGroup('SIGKILL');
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
  let exited = false;
  child.once('exit', () => { exited = true; });
  // The server writes its ports file once it listens; poll for it briefly (no event exists for this).
  let actual: number | undefined;
  for (let i = 0; i < 200 && actual === undefined; i++) {
    if (exited) throw new Error(`nats-server exited during start-up: ${stderr.trim()}`);
    await sleep(25);
    actual = readPort(portsDir);
  }
  if (actual === undefined) {
    killGroup('SIGKILL');
    throw new Error(`nats-server did not start within 5 s: ${stderr.trim()}`);
  }
  const url = `nats://${host}:${actual}`;
  options.log.info({ url, storeDir: options.storeDir, auth: Boolean(options.auth), tls: Boolean(options.tls), maxPayload }, 'started local nats-server with JetStream');
  return {
    url, port: actual, reused: false, authRequired: Boolean(options.auth), maxPayload,
    stop: async () => {
      if (exited) { process.off('exit', killOnExit); return; }
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin?.end();
      const timer = setTimeout(() => killGroup('SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
      process.off('exit', killOnExit);
    },
  };
}
