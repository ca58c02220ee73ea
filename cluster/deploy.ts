// Launch scripts for a whole deployment: start (NATS nodes, then controllers, then workers), stop
// (workers first: they drain on SIGTERM) and report, each an idempotent sh script per process run
// through a transport (ssh, or local for tests). State on each host: <dir>/<process>/{pid,log,...}.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type ConnectionOptions } from 'nats';
import { ensureLocalCredentials, generateCredential, type Credential } from '../runtime/bus/auth.js';
import { clusterUrls, natsClusterConfig, replicasFor, type NatsNodeConfig } from './nats-cluster.js';
import { deploymentProcesses, natsNodes, type DeployProcess, type DeploymentSpec, type WorkerRole, type ControllerRole } from './deploy-spec.js';
import type { Transport } from './deploy-transport.js';
import { openStores } from '../runtime/bus/store.js';

export type ProcessState = 'started' | 'running' | 'stopped' | 'killed' | 'not running' | 'failed';

export interface ProcessReport {
  name: string;
  kind: DeployProcess['kind'];
  host: string;
  state: ProcessState;
  pid?: number;
  /** What went wrong (the script's output or the process's last log lines). */
  detail?: string;
}

export interface DeployOptions {
  transport: Transport;
  /** Where the launcher keeps the deployment's generated credentials (created if missing). */
  stateDir: string;
  /** After starting the NATS nodes, wait this long for JetStream to answer before the rest (default 30 s; 0: do not wait). */
  waitMs?: number;
}

/** How long a stop waits before SIGKILL: a worker's own stop is bounded at 15 s (docs/worker.md, "Stopping"). */
const STOP_WAIT_S: Record<DeployProcess['kind'], number> = { worker: 20, controller: 20, nats: 10 };

/** Single-quotes a word for sh. */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A pid is alive unless gone or a zombie (a container's pid 1 may never reap it). */
const PRELUDE = [
  'alive() { kill -0 "$1" 2>/dev/null && ! grep -q "^[0-9]* (.*) Z" "/proc/$1/stat" 2>/dev/null; }',
  'running() { [ -f "$D/pid" ] && alive "$(cat "$D/pid")"; }',
].join('\n');

interface FileToWrite { name: string; text: string }

/** Starts the command in the background unless the pid file names a live process. */
export function startScript(dir: string, files: readonly FileToWrite[], command: string): string {
  const writes = files.map((f) => `cat > "$D/${f.name}" <<'INFAAS_EOF'\n${f.text.endsWith('\n') ? f.text : `${f.text}\n`}INFAAS_EOF`);
  return [
    `D=${shQuote(dir)}`, PRELUDE, 'umask 077', 'mkdir -p "$D" || exit 1',
    'if running; then echo "running $(cat "$D/pid")"; exit 0; fi',
    ...writes,
    'S=; command -v setsid >/dev/null 2>&1 && S=setsid',
    `$S ${command} </dev/null >>"$D/log" 2>&1 &`,
    'p=$!', 'echo "$p" > "$D/pid"',
    // A bad config or a missing binary fails at once: report it rather than "started".
    'sleep 0.5', 'if alive "$p"; then echo "started $p"; else echo "failed"; tail -n 5 "$D/log"; rm -f "$D/pid"; exit 1; fi',
  ].join('\n') + '\n';
}

/** SIGTERM, wait up to waitS for the exit (a worker drains first), then SIGKILL. */
export function stopScript(dir: string, waitS: number): string {
  return [
    `D=${shQuote(dir)}`, PRELUDE,
    'if running; then',
    '  p=$(cat "$D/pid"); kill -TERM "$p"; i=0',
    `  while alive "$p" && [ "$i" -lt ${waitS * 10} ]; do sleep 0.1; i=$((i+1)); done`,
    '  if alive "$p"; then kill -KILL "$p"; echo killed; else echo stopped; fi',
    'else echo "not running"; fi',
    'rm -f "$D/pid"',
  ].join('\n') + '\n';
}

export function statusScript(dir: string): string {
  return [`D=${shQuote(dir)}`, PRELUDE, 'if running; then echo "running $(cat "$D/pid")"; else echo stopped; fi'].join('\n') + '\n';
}

/** Generated once per deployment and kept: every start ships the same credentials. */
function deploymentCredentials(stateDir: string): { users: Credential[]; route: { user: string; password: string } } {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const users = ensureLocalCredentials(stateDir);
  const routeFile = join(stateDir, 'route.json');
  if (!existsSync(routeFile)) {
    const c = generateCredential('operator', 'route');
    writeFileSync(routeFile, JSON.stringify({ user: c.user, password: c.password }) + '\n', { mode: 0o600, flag: 'wx' });
  }
  return { users, route: JSON.parse(readFileSync(routeFile, 'utf8')) as { user: string; password: string } };
}

/** The process's client URL list: its own host's node first (it connects there; the others are fallbacks). */
function urlsFor(spec: DeploymentSpec, p: DeployProcess): string {
  const nodes = natsNodes(spec);
  const own = nodes.filter((n) => n.name === `nats-${p.host.name}`);
  return clusterUrls({ nodes: [...own, ...nodes.filter((n) => !own.includes(n))] });
}

/** The start script of each process (pure but for the credentials it reads from `stateDir`). */
export function startScripts(spec: DeploymentSpec, stateDir: string): Map<string, string> {
  const creds = spec.auth === false ? undefined : deploymentCredentials(stateDir);
  const nodes = natsNodes(spec);
  const configs = new Map<string, NatsNodeConfig>(natsClusterConfig({
    cluster: spec.name, nodes, ...(spec.maxPayload ? { maxPayload: spec.maxPayload } : {}),
    ...(creds ? { auth: creds.users, routeAuth: creds.route } : {}),
  }).map((c) => [c.name, c]));
  const replicas = replicasFor(nodes.length);
  const out = new Map<string, string>();
  for (const p of deploymentProcesses(spec)) {
    if (p.kind === 'nats') {
      const natsServer = p.host.natsServer ?? spec.natsServer ?? 'nats-server';
      out.set(p.name, startScript(p.dir, [{ name: 'nats.conf', text: configs.get(p.name)!.text }], `${natsServer} -c "$D/nats.conf"`));
      continue;
    }
    const role = p.kind === 'worker' ? 'worker' : 'controller';
    const cred = creds?.users.find((u) => u.role === role);
    const env = {
      INFAAS_DATA_DIR: '$D', INFAAS_REPLICAS: String(replicas), ...spec.env,
      ...(cred ? { INFAAS_NATS_CREDENTIALS: `$D/${role}.json` } : {}),
    };
    const envWords = Object.entries(env).map(([k, v]) => `${k}=${v === '$D' || v.startsWith('$D/') ? `"${v}"` : shQuote(v)}`).join(' ');
    const infaas = p.host.infaas ?? spec.infaas ?? 'infaas';
    const args = p.kind === 'worker' ? workerArgs(p.name, p.role as WorkerRole) : ['controller', ...((p.role as ControllerRole).args ?? [])];
    const command = `env ${envWords} ${infaas} ${args[0]} -s ${shQuote(urlsFor(spec, p))} ${args.slice(1).map(shQuote).join(' ')}`.trimEnd();
    out.set(p.name, startScript(p.dir, cred ? [{ name: `${role}.json`, text: JSON.stringify(cred) }] : [], command));
  }
  return out;
}

function workerArgs(id: string, r: WorkerRole): string[] {
  return ['worker', '--id', id, '--hardware-class', r.hardwareClass,
    ...(r.price !== undefined ? ['--price', String(r.price)] : []), ...(r.threads ? ['--threads', String(r.threads)] : []), ...(r.args ?? [])];
}

function report(p: DeployProcess, out: { code: number; stdout: string; stderr: string }): ProcessReport {
  const lines = out.stdout.trim().split('\n');
  const m = /^(started|running|stopped|killed|not running|failed)(?: (\d+))?$/.exec(lines[0] ?? '');
  const base = { name: p.name, kind: p.kind, host: p.host.name };
  if (!m || out.code !== 0) return { ...base, state: 'failed', detail: [...lines.slice(m ? 1 : 0), out.stderr.trim()].filter(Boolean).join('\n').slice(0, 2000) };
  return { ...base, state: m[1] as ProcessState, ...(m[2] ? { pid: Number(m[2]) } : {}) };
}

async function runAll(ps: readonly DeployProcess[], o: DeployOptions, script: (p: DeployProcess) => string): Promise<ProcessReport[]> {
  return Promise.all(ps.map(async (p) => report(p, await o.transport.run(p.host, script(p)))));
}

/** Connection options the launcher presents to the cluster (the controller's credentials when auth is on: it creates the buckets). */
export function launcherAccess(spec: DeploymentSpec, stateDir: string, role: 'controller' | 'operator' = 'controller'): Partial<ConnectionOptions> {
  if (spec.auth === false) return {};
  const c = deploymentCredentials(stateDir).users.find((u) => u.role === role)!;
  return { user: c.user, pass: c.password, inboxPrefix: c.inboxPrefix };
}

/**
 * Creates the buckets and the object store with the cluster's replicas, and waits until every
 * stream has a leader: a process that opens them in the seconds after creation on a cluster
 * otherwise gets 503 (no responders) from a stream still electing one, and exits.
 */
export async function prepareStores(servers: string, access: Partial<ConnectionOptions>, replicas: number, waitMs: number): Promise<void> {
  const nc = await connect({ ...access, servers: servers.split(','), timeout: 2000 });
  try {
    const stores = await openStores(nc, { replicas });
    const kvs = [stores.models, stores.variants, stores.profiles, stores.workers, stores.instances, stores.leases];
    const until = Date.now() + waitMs;
    for (;;) {
      const infos = await Promise.all([...kvs.map(async (kv) => (await kv.status()).streamInfo), (async () => (await stores.repository.status()).streamInfo)()]);
      const waiting = infos.filter((i) => replicas > 1 && !i.cluster?.leader).map((i) => i.config.name);
      if (waiting.length === 0) return;
      if (Date.now() > until) throw new Error(`streams without a leader after ${waitMs} ms: ${waiting.join(', ')}`);
      await sleep(200);
    }
  } finally {
    await nc.close();
  }
}

/** Resolves once JetStream answers through the cluster (its meta group has a leader), or throws after waitMs. */
export async function waitForJetStream(servers: string, access: Partial<ConnectionOptions>, waitMs: number): Promise<void> {
  const until = Date.now() + waitMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const nc = await connect({ ...access, servers: servers.split(','), timeout: 1000, maxReconnectAttempts: 0 });
      try {
        await (await nc.jetstreamManager({ timeout: 2000 })).getAccountInfo();
        return;
      } finally {
        await nc.close();
      }
    } catch (err) {
      last = err;
      await sleep(250);
    }
  }
  throw new Error(`JetStream did not answer at ${servers} within ${waitMs} ms: ${(last as Error | undefined)?.message ?? 'no reply'}`);
}

/** Starts whatever is not running: NATS nodes, then (once JetStream answers) controllers, then workers. */
export async function deployUp(spec: DeploymentSpec, o: DeployOptions): Promise<ProcessReport[]> {
  const scripts = startScripts(spec, o.stateDir);
  const ps = deploymentProcesses(spec);
  const of = (kind: DeployProcess['kind']) => ps.filter((p) => p.kind === kind);
  const nats = await runAll(of('nats'), o, (p) => scripts.get(p.name)!);
  if (nats.some((r) => r.state === 'failed')) return nats;
  const waitMs = o.waitMs ?? 30_000;
  if (waitMs > 0) {
    const servers = clusterUrls({ nodes: natsNodes(spec) });
    await waitForJetStream(servers, launcherAccess(spec, o.stateDir), waitMs);
    await prepareStores(servers, launcherAccess(spec, o.stateDir), replicasFor(natsNodes(spec).length), waitMs);
  }
  const controllers = await runAll(of('controller'), o, (p) => scripts.get(p.name)!);
  const workers = await runAll(of('worker'), o, (p) => scripts.get(p.name)!);
  return [...nats, ...controllers, ...workers];
}

/** Stops everything: workers first (each drains), then controllers, then the NATS nodes. */
export async function deployDown(spec: DeploymentSpec, o: Pick<DeployOptions, 'transport'>): Promise<ProcessReport[]> {
  const ps = deploymentProcesses(spec);
  const out: ProcessReport[] = [];
  for (const kind of ['worker', 'controller', 'nats'] as const) {
    out.push(...await runAll(ps.filter((p) => p.kind === kind), o as DeployOptions, (p) => stopScript(p.dir, STOP_WAIT_S[kind])));
  }
  return out;
}

export async function deployStatus(spec: DeploymentSpec, o: Pick<DeployOptions, 'transport'>): Promise<ProcessReport[]> {
  return runAll(deploymentProcesses(spec), o as DeployOptions, (p) => statusScript(p.dir));
}

/** The deployment with one more worker on a host (what the controller's command provisioner adds). */
function withWorker(spec: DeploymentSpec, hostName: string, role: WorkerRole): { spec: DeploymentSpec; process: DeployProcess } {
  if (!spec.hosts.some((h) => h.name === hostName)) throw new Error(`no host "${hostName}" in deployment ${spec.name}`);
  const next = { ...spec, hosts: spec.hosts.map((h) => (h.name === hostName ? { ...h, roles: [...h.roles, role] } : h)) };
  const process = deploymentProcesses(next).find((p) => p.kind === 'worker' && p.host.name === hostName && p.role === role)!;
  return { spec: next, process };
}

/**
 * Starts one worker on a host of a running deployment (idempotent by id): a start command for the
 * controller's CommandProvisioner (`infaas deploy add-worker`, docs/deploy.md).
 */
export async function deployAddWorker(spec: DeploymentSpec, o: DeployOptions, hostName: string, role: WorkerRole): Promise<ProcessReport> {
  const { spec: next, process } = withWorker(spec, hostName, role);
  return report(process, await o.transport.run(process.host, startScripts(next, o.stateDir).get(process.name)!));
}

/** Stops (drains) one worker that add-worker started; its id names its directory on the host. */
export async function deployRemoveWorker(spec: DeploymentSpec, o: Pick<DeployOptions, 'transport'>, hostName: string, id: string): Promise<ProcessReport> {
  const { process } = withWorker(spec, hostName, { role: 'worker', hardwareClass: 'any', id });
  return report(process, await o.transport.run(process.host, stopScript(process.dir, STOP_WAIT_S.worker)));
}

/** A fixed-width table of reports for the CLI. */
export function reportTable(rs: readonly ProcessReport[]): string {
  const rows = [['process', 'kind', 'host', 'state', 'pid'], ...rs.map((r) => [r.name, r.kind, r.host, r.state, r.pid ? String(r.pid) : '-'])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  const details = rs.filter((r) => r.detail).map((r) => `${r.name}: ${r.detail}`);
  return [...lines, ...details].join('\n');
}
