// Fault injection with real processes: a nats-server we can stop and restart on the same port and
// store, `infaas controller` and `infaas worker` processes we can SIGKILL, and an open-loop client
// that records every query's outcome. Used by bench/faults.ts (the report in docs/reliability.md)
// and test/serial/faults.test.ts (the assertions).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from 'nats';
import { startLocalNats, type LocalNats } from '../runtime/bus/local-nats.js';
import { kvKeys, type Stores } from '../runtime/bus/store.js';
import { QueryClient } from '../runtime/client/query-client.js';
import type { Query } from '../schemas/query.js';
import { InfaasError } from '../schemas/errors.js';
import { silentLogger } from '../runtime/log.js';

const BIN = fileURLToPath(new URL('../bin/infaas.js', import.meta.url));

/** A nats-server on a fixed port and store directory, so it can be stopped and started again as "the same" server. */
export class RestartableNats {
  private server?: LocalNats;
  readonly dir = mkdtempSync(join(tmpdir(), 'infaas-faults-'));
  port = -1;

  get url(): string { return `nats://127.0.0.1:${this.port}`; }

  async start(): Promise<void> {
    this.server = await startLocalNats({ storeDir: join(this.dir, 'nats'), port: this.port, log: silentLogger, install: false });
    this.port = this.server.port;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** An `infaas controller` or `infaas worker` child process. */
export interface ActorProcess {
  kind: 'controller' | 'worker';
  id: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `infaas <kind>` against `url` and resolves once it prints that it is connected and serving.
 * Workers get `--id`, the hardware class and one thread.
 */
export async function startActor(kind: 'controller' | 'worker', url: string, opts: { id?: string; hardwareClass?: string; dataDir: string }): Promise<ActorProcess> {
  const args = [BIN, kind, '-s', url];
  if (kind === 'worker') args.push('--id', opts.id ?? 'w', '--hardware-class', opts.hardwareClass ?? 'cpu-test', '--threads', '1');
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, INFAAS_DATA_DIR: opts.dataDir, INFAAS_LOG_LEVEL: 'warn' },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (/connected to/.test(out)) { child.stdout?.off('data', onData); resolve(); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
    void exited.then((code) => reject(new Error(`${kind} exited (${code}) before it was ready: ${out.slice(-2000)}`)));
    setTimeout(() => reject(new Error(`${kind} not ready after 60 s: ${out.slice(-2000)}`)), 60_000).unref();
  });
  child.stdout?.resume();
  child.stderr?.resume();
  const id = kind === 'worker' ? opts.id ?? 'w' : /controller/.exec(out)?.[0] ?? 'controller';
  return {
    kind, id, child, exited,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** The worker ids holding an instance of `variant` (KV infaas_instances, state serving or loading). */
export async function workersHolding(stores: Stores, variant: string): Promise<string[]> {
  const out = new Set<string>();
  for (const key of await kvKeys(stores.instances)) {
    const e = await stores.instances.get(key);
    if (!e || e.operation !== 'PUT') continue;
    const r = JSON.parse(new TextDecoder().decode(e.value)) as { worker: string; variant: string; state: string };
    if (r.variant === variant && r.state !== 'unloaded' && r.state !== 'failed') out.add(r.worker);
  }
  return [...out];
}

export interface QueryOutcome { sentAt: number; doneAt: number; ok: boolean; code?: string; worker?: string }

export interface Tally {
  sent: number;
  answered: number;
  /** Errors by code, the client's own TIMEOUT (no answer from the system) excluded. */
  errors: Record<string, number>;
  /** Queries the system never answered: the client gave up at the deadline plus its grace. */
  lost: number;
  /** Slowest outcome (answer or error), ms after sending. */
  maxMs: number;
}

/** Open-loop load: `rate` queries a second in 5 ms ticks; no retries (every outcome is the system's). */
export class OpenLoad {
  readonly outcomes: QueryOutcome[] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(nc: NatsConnection, make: () => Query, rate: number, graceMs = 2000) {
    const qc = new QueryClient(nc);
    let owed = 0;
    let last = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      owed += (rate * (now - last)) / 1000;
      last = now;
      for (; owed >= 1; owed--) {
        const q = make();
        const sentAt = Date.now();
        const p: Promise<void> = qc.query(q, { retry: false, timeoutMs: q.slo.latencyMs + graceMs }).then(
          (r) => { this.outcomes.push({ sentAt, doneAt: Date.now(), ok: true, worker: r.worker }); },
          (err: unknown) => {
            const code = err instanceof InfaasError ? err.code : (err as { code?: string }).code ?? 'UNKNOWN';
            this.outcomes.push({ sentAt, doneAt: Date.now(), ok: false, code });
          },
        ).finally(() => this.pending.delete(p));
        this.pending.add(p);
      }
    }, 5);
  }

  /** Stops sending; resolves once every query has its outcome. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.pending]);
  }

  tally(from = 0, to = Infinity): Tally {
    const t: Tally = { sent: 0, answered: 0, errors: {}, lost: 0, maxMs: 0 };
    for (const o of this.outcomes) {
      if (o.sentAt < from || o.sentAt >= to) continue;
      t.sent++;
      t.maxMs = Math.max(t.maxMs, o.doneAt - o.sentAt);
      if (o.ok) t.answered++;
      else if (o.code === 'TIMEOUT') t.lost++;
      else t.errors[o.code ?? 'UNKNOWN'] = (t.errors[o.code ?? 'UNKNOWN'] ?? 0) + 1;
    }
    return t;
  }

  /**
   * After a fault at `at`: how long until serving is whole again, i.e. the send time of the first
   * query after `at` from which every later query was answered (undefined if that never happened).
   */
  recoveredAfter(at: number): number | undefined {
    const after = this.outcomes.filter((o) => o.sentAt >= at).sort((a, b) => a.sentAt - b.sentAt);
    let lastBad = -1;
    after.forEach((o, i) => { if (!o.ok) lastBad = i; });
    if (lastBad === after.length - 1) return undefined;
    return after[lastBad + 1].sentAt - at;
  }
}

export function fmtTally(t: Tally): string {
  const errs = Object.entries(t.errors).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ') || 'none';
  return `sent ${t.sent}, answered ${t.answered}, errors ${Object.values(t.errors).reduce((a, b) => a + b, 0)} (${errs}), lost ${t.lost}, slowest outcome ${t.maxMs} ms`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
