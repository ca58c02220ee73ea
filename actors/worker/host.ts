// Hosts a worker: composes its instance registry, routing, heartbeat, the infaas-worker micro
// service (infer, load, unload, instances, drain), the monitor and the model-autoscaler.
import { totalmem, availableParallelism } from 'node:os';
import type { NatsConnection } from 'nats';
import { createActor, fromPromise, waitFor } from 'xstate';
import type { WorkerEventType, WorkerEvent } from '../../schemas/worker.js';
import { keys, services, subjects } from '../../subjects/index.js';
import { encodeJson } from '../../runtime/bus/codec.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import type { Logger } from '../../runtime/log.js';
import { RegistryView } from '../../runtime/views/registry-view.js';
import { SettingsView, knobs } from '../../runtime/views/settings-view.js';
import { kvPurgeAll, type Stores } from '../../runtime/bus/store.js';
import { addService, stopService } from '../../runtime/bus/service.js';
import { settleWithin } from '../../runtime/stopping.js';
import type { InstanceOptions, VariantInstance } from '../instance/index.js';
import { defaultMonitorOptions, monitorMachine, type MonitorOptions } from '../monitor/index.js';
import { autoscalerMachine, defaultScalingSettings, type ScalingSettings } from '../model-autoscaler/index.js';
import { ScalingRunner } from './scaling.js';
import { FetchRate } from '../../runtime/bus/blobs.js';
import { defaultInferenceOptions, inferenceHandler, type AcceptedQuery, type InferenceOptions } from './inference.js';
import { workerMachine } from './machine.js';
import { addControlEndpoints } from './control.js';
import { Heartbeat } from './heartbeat.js';
import { InstanceRegistry, instanceIds, mb } from './registry.js';
import { createRouter } from './routing.js';

export interface WorkerConfig {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  workerId?: string;
  /** Default cpu-<threads>t, the profiler's default too. */
  hardwareClass?: string;
  /** Cores the instances share. Default: the machine's available parallelism. */
  threads?: number;
  /** Memory the instances may hold (the hard limit). Default: half the machine's memory. */
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
   * the worker's event loop instead of a session thread. Default INLINE_BELOW_MS; 0 puts every
   * variant on a thread.
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

/**
 * The hop to a session thread and back costs 0.14-0.37 ms per run (bench/inline.ts). A run of about
 * that length is cheaper inline, even for the event loop it occupies (cnn-small at batch 32,
 * 0.22 ms, with room for profiling noise); a longer one (cnn-wide at batch 1, 0.7 ms) belongs on a
 * thread, where it runs beside the loop on another core.
 */
export const INLINE_BELOW_MS = 0.5;

export async function startWorker(config: WorkerConfig): Promise<Worker> {
  const threads = config.threads ?? availableParallelism();
  const hardwareClass = config.hardwareClass ?? `cpu-${threads}t`;
  const id = config.workerId ?? `worker-${instanceIds()}`;
  const memoryBytes = config.memoryBytes ?? Math.floor(totalmem() / 2);
  const pricePerHour = config.pricePerHour ?? PRICE_PER_THREAD_HOUR * threads;
  const worker = { id, hardwareClass, pricePerHour, threads, memoryBytes };
  const monitorOptions: MonitorOptions = { ...defaultMonitorOptions, ...config.monitor };
  const log = config.log.child({ actor: 'worker', worker: id, hardwareClass });
  const { nc, stores } = config;
  const view = new RegistryView(log);
  await view.start(stores);
  // The operator's pauses, knobs and pins (infaas_settings), read by the model-autoscaler each round.
  const consoleSettings = new SettingsView(log);
  await consoleSettings.start(stores);

  const event = (type: WorkerEventType, message: string, fields: Partial<WorkerEvent> = {}): void => {
    if (nc.isClosed() || nc.isDraining()) return;
    const e: WorkerEvent = { type, worker: id, at: Date.now(), message, ...fields };
    nc.publish(subjects.events.worker(id), encodeJson(e));
  };

  const registry = new InstanceRegistry({ worker, view, stores, log, event, instanceOptions: config.instance, inlineBelowMs: config.inlineBelowMs ?? INLINE_BELOW_MS });
  // How fast inputs by reference come from the blobs bucket here: the worker's record reports it to dispatchers.
  const fetchRate = new FetchRate();
  const heartbeat = new Heartbeat({ worker, registry, stores, log, event, thresholds: monitorOptions.thresholds, blobFetchMsPerMiB: () => fetchRate.msPerMiB });
  const actor = createActor(workerMachine.provide({
    actors: {
      announce: fromVoid(async () => { await heartbeat.write('ready'); }),
      drainInstances: fromVoid(async () => { await Promise.all([...registry.instances.values()].map((i) => i.drain())); }),
      withdraw: fromVoid(async () => withdraw()),
    },
    actions: {
      publishState: ({ context }, { state: s }) => {
        if (s === 'draining') { heartbeat.beat('draining'); event('worker.draining', `draining${context.reason ? ` (${context.reason})` : ''}`); }
        if (s === 'ready') event('worker.started', `ready: ${threads} threads, ${mb(memoryBytes)}, ${hardwareClass}, $${pricePerHour.toFixed(3)}/h`);
        if (s === 'stopped') { event('worker.stopped', 'stopped'); config.onStopped?.(); }
        if (s === 'failed') log.error({ err: context.error }, 'worker failed to start');
      },
    },
  }));
  actor.subscribe({ error: (err) => log.error({ err }, 'worker actor crashed') });
  const state = () => actor.getSnapshot().value;

  const router = createRouter(id, registry, () => state() !== 'ready', (v) => view.variants.has(v));
  const inference: InferenceOptions = { ...defaultInferenceOptions, ...config.inference };
  const { srv, errors } = await addService(nc, {
    name: services.worker, version: '0.1.0', description: 'INFaaS worker: variant instances, batching, monitor, model-autoscaler',
    metadata: { workerId: id, hardwareClass, threads: String(threads) },
  });
  const data = inferenceHandler(nc, router, inference, log, stores.blobs, (err) => errors.count('infer', err), fetchRate);
  srv.addEndpoint('infer', { subject: subjects.worker.infer(id), handler: data.handler });
  addControlEndpoints(srv, {
    workerId: id, log, instances: () => registry.live(), startInstance: (v) => registry.start(v), load: (v) => registry.load(v), record: (i) => registry.record(i),
    draining: () => router.draining, state: () => String(state()),
    requestDrain: () => actor.send({ type: 'drain.requested', reason: 'drain requested over NATS' }),
  });

  // Monitor: one sample per window feeds verdicts, KV stats, the heartbeat and the autoscaler.
  const scaling = new ScalingRunner({
    settings: { ...defaultScalingSettings, ...config.scaling }, threads, memoryBytes, view, hardwareClass, log,
    instances: () => registry.live(), startInstance: (v) => registry.start(v), event, replaced: (from, to) => registry.replaced(from, to),
    console: () => { const m = consoleSettings.model; return { paused: m.paused === true, settings: knobs(m) }; },
    isPinned: (instanceId) => consoleSettings.isPinned(id, instanceId),
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
        heartbeat.sample();
        if (state() === 'ready' || state() === 'draining') heartbeat.beat(state() === 'ready' ? 'ready' : 'draining');
        if (config.autoscale !== false && state() === 'ready') autoscaler.send({ type: 'stats.sampled' });
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
    consoleSettings.stop();
    // Both wait on the server: bounded, so a worker whose NATS is gone still stops (its record then
    // expires with the bucket's TTL).
    const [, removed] = await Promise.all([stopService(srv, log), settleWithin(stores.workers.delete(keys.worker(id)), 2_000)]);
    if (!removed.settled || 'error' in removed) log.warn('worker record not removed from KV (it expires with the bucket TTL)');
  }

  // A worker restarted under the same id (a provisioner's, say): the instance records its previous
  // process left behind describe instances that no longer exist; dispatchers must not route to them.
  const stale = await kvPurgeAll(stores.instances, keys.instancesOf(id));
  if (stale > 0) log.info({ records: stale }, 'removed instance records left by an earlier process with this worker id');

  actor.start();
  await waitFor(actor, (s) => s.value !== 'starting');
  if (state() === 'failed') throw new InfaasError(ErrorCode.Internal, `worker ${id} failed to start: ${actor.getSnapshot().context.error}`);
  monitor.start();
  autoscaler.start();
  log.info({ threads, memoryBytes, pricePerHour }, 'worker ready');

  return {
    id, hardwareClass, instances: registry.instances, load: (v) => registry.load(v), unload: (i) => registry.unload(i), accept: data.accept,
    stop: async () => {
      if (actor.getSnapshot().status === 'active' && state() === 'ready') actor.send({ type: 'drain.requested', reason: 'stopping' });
      await waitFor(actor, (s) => s.status === 'done', { timeout: 60_000 }).catch(() => {});
      await withdraw();
    },
  };
}

function fromVoid(fn: () => Promise<void>) {
  return fromPromise<void>(fn);
}
