// Hosts a worker: its KV record and heartbeat, the infaas-worker micro service (infer, load,
// unload, instances, drain), its variant instances, the monitor and the model-autoscaler.
import { hostname, totalmem, availableParallelism } from 'node:os';
import { customAlphabet } from 'nanoid';
import type { NatsConnection } from 'nats';
import { createActor, fromPromise, waitFor } from 'xstate';
import type { ProfileRecord } from '../../schemas/registry.js';
import { type InstanceRecord, type WorkerEventType, type WorkerRecord, type WorkerEvent } from '../../schemas/worker.js';
import { keys, services, subjects } from '../../subjects/index.js';
import { encodeJson } from '../../runtime/codec.js';
import { ErrorCode, InfaasError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import { RegistryView } from '../../runtime/registry-view.js';
import { kvPut, objectBytes, type Stores } from '../../runtime/store.js';
import { ThreadedSession } from '../../runtime/threaded-session.js';
import { InlineSession } from '../../runtime/inline-session.js';
import { VariantInstance, type InstanceOptions, type InstanceSpec } from '../instance/index.js';
import { CpuSampler, InstanceSampler, defaultMonitorOptions, monitorMachine, type MonitorOptions } from '../monitor/index.js';
import { autoscalerMachine, defaultScalingSettings, type ScalingSettings } from '../model-autoscaler/index.js';
import { ScalingRunner } from './scaling.js';
import { defaultInferenceOptions, inferenceHandler, type AcceptedQuery, type InferenceOptions, type Router } from './inference.js';
import { workerMachine } from './machine.js';
import { addControlEndpoints } from './control.js';

export interface WorkerConfig {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  workerId?: string;
  /** Default cpu-<threads>t, the profiler's default too. */
  hardwareClass?: string;
  /** Cores instances may reserve. Default: the machine's available parallelism. */
  threads?: number;
  /** Memory instances may reserve. Default: half the machine's memory. */
  memoryBytes?: number;
  /** Default: a list price per vCPU-hour times threads (see docs/worker.md). */
  pricePerHour?: number;
  monitor?: Partial<MonitorOptions>;
  scaling?: Partial<ScalingSettings>;
  /** Default true; tests of the data plane alone turn it off. */
  autoscale?: boolean;
  instance?: Partial<InstanceOptions>;
  inference?: Partial<InferenceOptions>;
  /**
   * Variants whose profiled run at their largest batch takes at most this many milliseconds run on
   * the worker's event loop instead of a session thread (the hop costs more than such a run: see
   * docs/worker.md). Default 1; 0 puts every variant on a thread.
   */
  inlineBelowMs?: number;
  /** Called once the worker has drained and withdrawn (after a drain request or stop()). */
  onStopped?: () => void;
}

export interface Worker {
  readonly id: string;
  readonly hardwareClass: string;
  readonly instances: ReadonlyMap<string, VariantInstance>;
  /** Starts an instance of a variant; resolves when it is active (or rejects with why it failed). */
  load(variant: string): Promise<VariantInstance>;
  /** Drains and unloads one instance. */
  unload(instanceId: string): Promise<void>;
  /** Drain everything, withdraw from KV and the bus; resolves when done. */
  stop(): Promise<void>;
  /**
   * Takes a query that a dispatcher in this process has already decoded and validated, as the
   * infer endpoint would after its own decoding: no second hop through NATS.
   */
  accept(query: AcceptedQuery): void;
}

/**
 * Price of one vCPU-hour, from public on-demand list prices of general-purpose cloud VMs
 * (about $0.04-0.05 per vCPU-hour in 2024-26); override per worker with --price.
 */
export const PRICE_PER_THREAD_HOUR = 0.048;

const instanceIds = customAlphabet('abcdefghijklmnopqrstuvwxyz0123456789', 8);

export async function startWorker(config: WorkerConfig): Promise<Worker> {
  const threads = config.threads ?? availableParallelism();
  const hardwareClass = config.hardwareClass ?? `cpu-${threads}t`;
  const id = config.workerId ?? `worker-${instanceIds()}`;
  const memoryBytes = config.memoryBytes ?? Math.floor(totalmem() / 2);
  const pricePerHour = config.pricePerHour ?? PRICE_PER_THREAD_HOUR * threads;
  const monitorOptions: MonitorOptions = { ...defaultMonitorOptions, ...config.monitor };
  const log = config.log.child({ actor: 'worker', worker: id, hardwareClass });
  const { nc, stores } = config;
  const startedAt = new Date().toISOString();
  const instances = new Map<string, VariantInstance>();
  const view = new RegistryView(log);
  await view.start(stores);
  const cpu = new CpuSampler();
  let usage: WorkerRecord['usage'] = { cpuCores: 0, hostCpu: 0, rssBytes: process.memoryUsage().rss, threadsReserved: 0, memoryReserved: 0, instances: 0, queued: 0, qps: 0 };

  const event = (type: WorkerEventType, message: string, fields: Partial<WorkerEvent> = {}): void => {
    if (nc.isClosed() || nc.isDraining()) return;
    const e: WorkerEvent = { type, worker: id, at: new Date().toISOString(), message, ...fields };
    nc.publish(subjects.events.worker(id), encodeJson(e));
  };

  const profileOf = (variant: string): ProfileRecord | undefined => {
    const p = view.profiles.get(keys.profile(variant, hardwareClass));
    return p?.status === 'done' ? p : undefined;
  };

  const inlineBelowMs = config.inlineBelowMs ?? 1;
  /** A profiled, single-threaded CPU variant whose largest batch runs within inlineBelowMs. */
  const inline = (p: ProfileRecord | undefined): boolean => {
    const full = p?.latency?.reduce((a, l) => Math.max(a, l.p50Ms), 0);
    return full !== undefined && full > 0 && full <= inlineBelowMs;
  };
  const live = () => [...instances.values()].filter((i) => i.state !== 'unloaded' && i.state !== 'failed');
  const reserved = () => live().reduce((a, i) => ({ threads: a.threads + i.spec.threads, memory: a.memory + i.spec.memoryBytes }), { threads: 0, memory: 0 });

  const writeInstance = (rec: InstanceRecord) => kvPut(stores.instances, keys.instance(id, rec.id), rec)
    .catch((err) => log.debug({ err: (err as Error).message }, 'instance record not written'));

  const onState = (inst: VariantInstance): void => {
    const state = inst.state;
    event('instance.state', `${inst.spec.id} (${inst.spec.variant}) is ${state}${inst.reason ? `: ${inst.reason}` : ''}`, {
      instance: inst.spec.id, variant: inst.spec.variant, state,
    });
    if (state === 'unloaded' || state === 'failed') {
      instances.delete(inst.spec.id);
      if (state === 'failed') log.warn({ instance: inst.spec.id, variant: inst.spec.variant, reason: inst.reason }, 'instance failed');
      void stores.instances.delete(keys.instance(id, inst.spec.id)).catch(() => {});
      return;
    }
    void writeInstance(snapshotRecord(inst));
  };

  const snapshotRecord = (inst: VariantInstance): InstanceRecord => ({
    id: inst.spec.id, worker: id, variant: inst.spec.variant, model: inst.spec.model, hardwareClass, state: inst.state,
    ...(inst.reason ? { reason: inst.reason } : {}),
    threads: inst.spec.threads, maxBatch: inst.spec.maxBatch, memoryBytes: inst.spec.memoryBytes,
    queueLength: inst.queueLength, inFlight: inst.inFlight, arrivalRate: 0, serviceRate: 0, deadlineMisses: 0, meanBatch: 0,
    latency: [], capacityQps: inst.capacityQps, ...(inst.loadMs !== undefined ? { loadMs: inst.loadMs } : {}),
    createdAt: inst.createdAt, updatedAt: Date.now(),
  });

  /** Creates and starts loading an instance; NO_CAPACITY when its threads or memory do not fit. */
  const startInstance = (variantId: string): VariantInstance => {
    const v = view.variants.get(variantId);
    if (!v) throw new InfaasError(ErrorCode.VariantNotFound, `variant ${variantId} is not in the registry`, { variant: variantId });
    const m = view.models.get(v.model);
    if (!m) throw new InfaasError(ErrorCode.ModelNotFound, `model ${v.model} of variant ${variantId} is not in the registry`);
    const p = profileOf(variantId);
    const memory = p?.peakMemoryBytes ?? v.sizeBytes * 2;
    // Cores are shared by all instances (runs queue for them); memory is the hard limit. When it is
    // short, idle instances of other variants are unloaded, least recently used first.
    // (An evicted instance is idle: it releases its session as soon as it is told to drain.)
    const freed = reserved().memory + memory > memoryBytes ? evictFor(variantId, memory) : 0;
    const r = reserved();
    if (r.memory - freed + memory > memoryBytes) {
      throw new InfaasError(ErrorCode.NoCapacity, `no room for ${variantId} on ${id}: needs ${mb(memory)}, ${mb(memoryBytes - r.memory)} free and no idle instance to unload`, {
        memoryFree: memoryBytes - r.memory,
      });
    }
    const spec: InstanceSpec = {
      id: `i-${instanceIds()}`, variant: v.id, model: v.model, maxBatch: v.maxBatch, threads: v.intraOpThreads, memoryBytes: memory,
      inputs: m.inputs, batchQueries: m.outputs.every((o) => o.shape.length > 0 && o.shape[0] === null), ...(p?.latency && p.loadMs !== undefined ? { profile: { latency: p.latency, loadMs: p.loadMs } } : {}),
    };
    if (!spec.profile) log.warn({ variant: v.id }, 'no profile for this hardware class yet: batching without a latency curve, no classification');
    replacements.delete(variantId);
    const inst = new VariantInstance({
      spec, log, onState, options: config.instance,
      worker: { id, hardwareClass, pricePerHour, threads },
      open: async () => {
        const session = { graphOptimizationLevel: v.optLevel, intraOpThreads: v.intraOpThreads, executionProvider: v.executionProvider };
        const bytes = await objectBytes(stores.repository, v.object);
        return inline(p) ? InlineSession.open(bytes, session) : ThreadedSession.open(bytes, session);
      },
    });
    instances.set(spec.id, inst);
    log.info({ instance: spec.id, variant: v.id }, 'loading instance');
    return inst;
  };

  /** Starts draining idle instances (nothing queued or running) of other variants, oldest arrival first, until `memory` would fit; the bytes they free. */
  const evictFor = (variantId: string, memory: number): number => {
    const idle = live().filter((i) => i.spec.variant !== variantId && i.serving && i.queueLength === 0 && i.inFlight === 0)
      .sort((a, b) => a.lastArrivalAt - b.lastArrivalAt);
    let free = memoryBytes - reserved().memory;
    for (const i of idle) {
      if (free >= memory) break;
      free += i.spec.memoryBytes;
      log.info({ instance: i.spec.id, variant: i.spec.variant, for: variantId }, 'unloading an idle instance to make room');
      event('instance.evicted', `${i.spec.id} (${i.spec.variant}) unloaded to make room for ${variantId}`, { instance: i.spec.id, variant: i.spec.variant });
      void i.drain();
    }
    return free - (memoryBytes - reserved().memory);
  };

  const load = async (variantId: string): Promise<VariantInstance> => {
    const inst = startInstance(variantId);
    const state = await inst.loaded;
    if (state === 'failed') throw new InfaasError(ErrorCode.ModelLoadFailed, `loading ${variantId} failed: ${inst.reason ?? 'unknown error'}`, { variant: variantId });
    return inst;
  };

  const unload = async (instanceId: string): Promise<void> => {
    const inst = instances.get(instanceId);
    if (!inst) throw new InfaasError(ErrorCode.VariantNotLoaded, `no instance ${instanceId} on ${id}`);
    await inst.drain();
  };

  const actor = createActor(workerMachine.provide({
    actors: {
      announce: fromVoid(async () => { await writeRecord('ready'); }),
      drainInstances: fromVoid(async () => { await Promise.all([...instances.values()].map((i) => i.drain())); }),
      withdraw: fromVoid(async () => withdraw()),
    },
    actions: {
      publishState: ({ context }, { state: s }) => {
        if (s === 'draining') { void writeRecord('draining').catch((err) => log.debug({ err: (err as Error).message }, 'draining record not written')); event('worker.draining', `draining${context.reason ? ` (${context.reason})` : ''}`); }
        if (s === 'ready') event('worker.started', `ready: ${threads} threads, ${mb(memoryBytes)}, ${hardwareClass}, $${pricePerHour.toFixed(3)}/h`);
        if (s === 'stopped') { event('worker.stopped', 'stopped'); config.onStopped?.(); }
        if (s === 'failed') log.error({ err: context.error }, 'worker failed to start');
      },
    },
  }));
  actor.subscribe({ error: (err) => log.error({ err }, 'worker actor crashed') });

  const writeRecord = (state: WorkerRecord['state']) => kvPut<WorkerRecord>(stores.workers, keys.worker(id), {
    id, host: hostname(), pid: process.pid, hardwareClass, pricePerHour, capacity: { threads, memoryBytes }, state, usage,
    startedAt, heartbeatAt: Date.now(),
  });

  // Variants this worker's autoscaler switched away from, and what replaced them: unpinned queries
  // for the old variant (sent before the controller saw the switch) are served by the new one.
  const replacements = new Map<string, string>();
  const current = (variant: string): string => {
    let v = variant;
    for (let hops = 0; hops < 8; hops++) {
      for (const i of instances.values()) if (i.spec.variant === v && i.accepting) return v;
      const next = replacements.get(v);
      if (!next) break;
      v = next;
    }
    return variant;
  };

  const router: Router = {
    get draining() { return actor.getSnapshot().value !== 'ready'; },
    route: (requested, { load: loadIfNeeded, pinned }, deadline, now) => {
      const variant = pinned ? requested : current(requested);
      // One pass, nothing allocated per query: the least busy serving replica (an interfered or
      // overloaded one only when it is also the least busy), else the loading one ready soonest.
      let serving: VariantInstance | undefined;
      let loading: VariantInstance | undefined;
      for (const i of instances.values()) {
        if (i.spec.variant !== variant || !i.accepting) continue;
        if (i.serving) { if (!serving || work(i) < work(serving)) serving = i; } else if (!loading || i.readyInMs(now) < loading.readyInMs(now)) loading = i;
      }
      if (serving) return serving;
      const inst = loading ?? (loadIfNeeded ? startInstance(variant) : undefined);
      if (!inst) {
        if (!view.variants.has(variant)) throw new InfaasError(ErrorCode.VariantNotFound, `variant ${variant} is not in the registry`, { variant });
        throw new InfaasError(ErrorCode.VariantNotLoaded, `variant ${variant} is not loaded on ${id}; send load: true to load it`, { variant, worker: id });
      }
      const wait = inst.readyInMs(now);
      if (now + wait + inst.latencyMs(1) > deadline) {
        throw new InfaasError(ErrorCode.InstanceLoading, `${variant} is loading on ${id}, ready in ~${wait.toFixed(0)} ms: later than this query's deadline`, { variant, worker: id, readyInMs: wait, retryAfterMs: wait });
      }
      return inst;
    },
  };
  const inference: InferenceOptions = { ...defaultInferenceOptions, ...config.inference };

  const srv = await nc.services.add({
    name: services.worker, version: '0.1.0', description: 'INFaaS worker: variant instances, batching, monitor, model-autoscaler',
    metadata: { workerId: id, hardwareClass, threads: String(threads) },
  });
  const data = inferenceHandler(nc, router, inference, log);
  srv.addEndpoint('infer', { subject: subjects.worker.infer(id), handler: data.handler });
  addControlEndpoints(srv, {
    workerId: id, log, instances: live, startInstance, load, record: snapshotRecord,
    draining: () => router.draining, state: () => String(actor.getSnapshot().value),
    requestDrain: () => actor.send({ type: 'drain.requested', reason: 'drain requested over NATS' }),
  });

  // Monitor: one sample per window feeds verdicts, KV stats, the heartbeat and the autoscaler.
  const sampler = new InstanceSampler(id, hardwareClass, monitorOptions.thresholds);
  const scaling = new ScalingRunner({
    settings: { ...defaultScalingSettings, ...config.scaling }, threads, memoryBytes, view, hardwareClass, log,
    instances: () => live(), startInstance, event, replaced: (from, to) => replacements.set(from, to),
  });
  const autoscaler = createActor(autoscalerMachine.provide({
    actors: { planAndAct: fromVoid(() => scaling.round()) },
    actions: { reportError: ({ context }) => log.warn({ err: context.error }, 'autoscaler round failed') },
  }));
  autoscaler.subscribe({ error: (err) => log.error({ err }, 'autoscaler actor crashed') });
  const monitor = createActor(monitorMachine.provide({
    delays: { window: monitorOptions.windowMs },
    actions: {
      sample: () => {
        const { records, changes } = sampler.sample(live());
        for (const c of changes) c.instance.verdict(c.verdict, c.reason);
        for (const r of records) {
          const inst = instances.get(r.id);
          void writeInstance(inst ? { ...r, state: inst.state } : r);
        }
        const r = reserved();
        usage = {
          ...cpu.sample(), rssBytes: process.memoryUsage().rss, threadsReserved: r.threads, memoryReserved: r.memory,
          instances: records.length, queued: records.reduce((a, x) => a + x.queueLength, 0), qps: records.reduce((a, x) => a + x.serviceRate, 0),
        };
        if (actor.getSnapshot().value === 'ready' || actor.getSnapshot().value === 'draining') {
          void writeRecord(actor.getSnapshot().value === 'ready' ? 'ready' : 'draining').catch((err) => log.debug({ err: (err as Error).message }, 'heartbeat not written'));
        }
        if (config.autoscale !== false && actor.getSnapshot().value === 'ready') autoscaler.send({ type: 'stats.sampled' });
      },
    },
  }));

  let withdrawn = false;
  async function withdraw(): Promise<void> {
    if (withdrawn) return;
    withdrawn = true;
    monitor.send({ type: 'stop.requested' });
    autoscaler.send({ type: 'stop.requested' });
    view.stop();
    await srv.stop().catch(() => {});
    await stores.workers.delete(keys.worker(id)).catch(() => {});
  }

  actor.start();
  await waitFor(actor, (s) => s.value !== 'starting');
  if (actor.getSnapshot().value === 'failed') throw new InfaasError(ErrorCode.Internal, `worker ${id} failed to start: ${actor.getSnapshot().context.error}`);
  monitor.start();
  autoscaler.start();
  log.info({ threads, memoryBytes, pricePerHour }, 'worker ready');

  return {
    id, hardwareClass, instances, load, unload, accept: data.accept,
    stop: async () => {
      if (actor.getSnapshot().status === 'active' && actor.getSnapshot().value === 'ready') actor.send({ type: 'drain.requested', reason: 'stopping' });
      await waitFor(actor, (s) => s.status === 'done', { timeout: 60_000 }).catch(() => {});
      await withdraw();
    },
  };
}

function work(i: VariantInstance): number {
  return i.queueLength + i.inFlight;
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

function fromVoid(fn: () => Promise<void>) {
  return fromPromise<void>(fn);
}
