// Composition roots: connect to (or embed) NATS and start the controller and worker actors.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
// The actors load in startStack, only for the roles it runs: a client command (infaas models) needs none.
import type { Profiler, ProfilerConfig } from '../actors/profiler/index.js';
import type { Registrar } from '../actors/registrar/index.js';
import type { Dispatcher, SelectionPolicy } from '../actors/dispatcher/index.js';
import type { Admin } from '../actors/admin/index.js';
import type { Worker, WorkerConfig } from '../actors/worker/index.js';
import { startLocalNats, type LocalNats } from '../runtime/bus/local-nats.js';
import type { Logger } from '../runtime/log.js';
import { closeBus, connectBus } from '../runtime/bus/nats.js';
import { openStores, type Stores } from '../runtime/bus/store.js';
import { STOP_BUS_MS, STOP_DRAIN_MS, StopBudget } from '../runtime/stopping.js';
import { credentialFile, ensureLocalCredentials, isLoopbackUrl, resolveAccess, type NatsAccess, type ResolvedAccess } from '../runtime/bus/auth.js';
import type { Role } from '../subjects/access.js';
import { readEnv } from './config.js';

export interface Stack {
  url: string;
  nc: NatsConnection;
  stores: Stores;
  registrar?: Registrar;
  dispatcher?: Dispatcher;
  /** The operator's console (infaas-admin), on every controller. */
  admin?: Admin;
  profiler?: Profiler;
  worker?: Worker;
  server?: LocalNats;
  stop(): Promise<void>;
}

export interface StackOptions {
  log: Logger;
  /** Connect here; when absent, start (or reuse) the embedded server in dataDir. */
  natsUrl?: string;
  dataDir: string;
  port?: number;
  controller: boolean;
  worker: boolean;
  /** The dispatcher's selection policy (default: the model-less selectVariant; baselines in actors/dispatcher/baselines.ts). */
  policy?: SelectionPolicy;
  profiler?: Omit<ProfilerConfig, 'nc' | 'stores' | 'log'>;
  /** Serving side of a worker (instances, monitor, autoscaler); shares the profiler's id and class. */
  serving?: Omit<WorkerConfig, 'nc' | 'stores' | 'log' | 'workerId' | 'hardwareClass' | 'threads'>;
  name?: string;
  /**
   * Credentials and TLS trust to present. Without credentials, a server on loopback gets this
   * role's file from `<dataDir>/credentials/` if there is one (the embedded default's).
   */
  access?: NatsAccess;
  /** Whose credential: default stack (controller and worker), controller, worker, or operator (neither). */
  role?: Role;
  /** The embedded server checks credentials (default true): every role's, generated once into the data dir. */
  auth?: boolean;
  /** The embedded server serves TLS only, with this certificate and key. */
  tls?: { certFile: string; keyFile: string };
  /** The embedded server's max payload in bytes (default DEFAULT_MAX_PAYLOAD, 8 MiB; runtime/bus/local-nats.ts). */
  maxPayload?: number;
  /**
   * JetStream replicas of buckets this stack creates (default: INFAAS_REPLICAS, else 1); fixed at
   * creation: a bucket that exists keeps its own (cluster/deploy.ts sets 3 on a 3-node cluster).
   */
  replicas?: number;
}

/** What this stack presents to the server at `url` (see StackOptions.access). */
export function stackAccess(o: Pick<StackOptions, 'access' | 'dataDir' | 'tls'>, role: Role, url: string): ResolvedAccess {
  const given = o.access ?? {};
  const local = credentialFile(o.dataDir, role);
  const useLocal = !given.credentials && given.user === undefined && isLoopbackUrl(url) && existsSync(local);
  // A self-signed certificate of our own embedded server is its own CA.
  const tls = given.tls?.caFile || !o.tls ? given.tls : { ...given.tls, caFile: o.tls.certFile };
  return resolveAccess({ ...given, ...(useLocal ? { credentials: local } : {}), ...(tls ? { tls } : {}) }, role);
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const role = o.role ?? (o.controller && o.worker ? 'stack' : o.controller ? 'controller' : o.worker ? 'worker' : 'operator');
  const users = !o.natsUrl && o.auth !== false ? ensureLocalCredentials(o.dataDir) : undefined;
  const access = stackAccess(o, role, o.natsUrl ?? 'nats://127.0.0.1');
  const server = o.natsUrl ? undefined : await startLocalNats({
    storeDir: join(o.dataDir, 'nats'), port: o.port, log: o.log, connect: access.options, ...(users ? { auth: users } : {}), ...(o.tls ? { tls: o.tls } : {}),
    ...(o.maxPayload !== undefined ? { maxPayload: o.maxPayload } : {}),
  });
  const url = o.natsUrl ?? server!.url;
  // A part that fails to start takes down what started before it (the connection and the embedded
  // server included), so a failed start leaves nothing running to keep the process alive.
  const started: { stop(): Promise<unknown> | unknown }[] = [];
  const undo = async (err: unknown): Promise<never> => {
    for (const part of started.reverse()) await Promise.resolve(part.stop()).catch(() => {});
    await server?.stop();
    throw err;
  };
  const nc = await connectBus({ servers: url, name: o.name ?? 'infaas', log: o.log, extra: access.options, who: access.who }).catch(undo);
  started.push({ stop: () => closeBus(nc, 1000) });
  const stores = await openStores(nc, { replicas: o.replicas ?? readEnv().replicas ?? 1 }).catch(undo);
  const start = async <T extends { stop(): Promise<unknown> | unknown }>(make: () => Promise<T>): Promise<T> => {
    const part = await make();
    started.push(part);
    return part;
  };
  let registrar: Stack['registrar'], dispatcher: Stack['dispatcher'], admin: Stack['admin'], profiler: Stack['profiler'], worker: Stack['worker'];
  try {
    registrar = o.controller ? await start(async () => (await import('../actors/registrar/index.js')).startRegistrar({ nc, stores, log: o.log })) : undefined;
    const controllerId = registrar?.id;
    dispatcher = o.controller ? await start(async () => (await import('../actors/dispatcher/index.js')).startDispatcher({ nc, stores, log: o.log, controllerId: controllerId!, ...(o.policy ? { policy: o.policy } : {}) })) : undefined;
    admin = o.controller ? await start(async () => (await import('../actors/admin/index.js')).startAdmin({ nc, stores, log: o.log, registrar })) : undefined;
    profiler = o.worker ? await start(async () => (await import('../actors/profiler/index.js')).startProfiler({ nc, stores, log: o.log, ...o.profiler })) : undefined;
    const p = profiler;
    worker = p ? await start(async () => (await import('../actors/worker/index.js')).startWorker({
      nc, stores, log: o.log, ...o.serving, workerId: p.workerId, hardwareClass: p.hardwareClass, threads: o.profiler?.threads,
    })) : undefined;
  } catch (err) {
    await undo(err);
  }
  if (dispatcher && worker) dispatcher.attachLocal(worker.id, worker.accept);
  let stopping: Promise<void> | undefined;
  return {
    url, nc, stores, registrar, dispatcher, admin, profiler, worker, server,
    // Bounded whether or not the server answers (docs/worker.md, "Stopping"): queries already
    // accepted get up to STOP_DRAIN_MS, every later step that needs the server shares STOP_BUS_MS.
    stop: () => (stopping ??= (async () => {
      if (worker) await new StopBudget(STOP_DRAIN_MS, o.log).step('worker drain', () => worker.stop());
      const bus = new StopBudget(STOP_BUS_MS, o.log);
      if (profiler) await bus.step('profiler stop', () => profiler.stop());
      if (dispatcher) await bus.step('dispatcher stop', () => dispatcher.stop());
      if (admin) await bus.step('admin stop', () => admin.stop());
      if (registrar) await bus.step('registrar stop', () => registrar.stop());
      if (!(await closeBus(nc, Math.max(bus.leftMs, 250)))) o.log.warn('NATS connection closed without a drain (server unreachable): unsent messages dropped');
      await server?.stop();
    })()),
  };
}
