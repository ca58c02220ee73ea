// The embedded local NATS: finds (or installs) nats-server and runs it with JetStream in our data dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'nats';
import type { Logger } from '../log.js';

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

export interface LocalNatsOptions {
  /** JetStream store directory (created if missing). */
  storeDir: string;
  /** TCP port; -1 picks a free one (tests). Default 4222. */
  port?: number;
  /** Listen address; loopback unless told otherwise. */
  host?: string;
  log: Logger;
  install?: boolean;
}

export interface LocalNats {
  url: string;
  port: number;
  /** True when we found a server already listening and reuse it instead of starting one. */
  reused: boolean;
  stop(): Promise<void>;
}

async function isNatsUp(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, timeout: 1000, maxReconnectAttempts: 0 });
    await nc.close();
    return true;
  } catch {
    return false;
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

export async function startLocalNats(options: LocalNatsOptions): Promise<LocalNats> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 4222;
  if (port > 0 && (await isNatsUp(`nats://${host}:${port}`))) {
    options.log.info({ port }, 'reusing the NATS server already listening');
    return { url: `nats://${host}:${port}`, port, reused: true, stop: async () => {} };
  }
  const bin = ensureNatsServer(options.log, options.install ?? true);
  mkdirSync(options.storeDir, { recursive: true });
  const portsDir = join(options.storeDir, 'ports');
  rmSync(portsDir, { recursive: true, force: true });
  mkdirSync(portsDir, { recursive: true });
  const args = ['-a', host, '-p', String(port), '-js', '-sd', options.storeDir, '--ports_file_dir', portsDir, '-n', `infaas-local-${process.pid}`];
  // Own process group: a Ctrl-C at the terminal must reach us (we drain, then stop the server),
  // not kill the server under our feet. If we die, the exit hook still takes it down.
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const killOnExit = () => child.kill('SIGKILL');
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
    child.kill('SIGKILL');
    throw new Error(`nats-server did not start within 5 s: ${stderr.trim()}`);
  }
  const url = `nats://${host}:${actual}`;
  options.log.info({ url, storeDir: options.storeDir }, 'started local nats-server with JetStream');
  return {
    url, port: actual, reused: false,
    stop: async () => {
      process.off('exit', killOnExit);
      if (exited) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
    },
  };
}
