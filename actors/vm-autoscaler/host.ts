// Hosts the VM-autoscaler on a controller: watches worker records (KV), the dispatchers' unplaced-
// demand reports and the workers' mitigation requests; the controller holding the lease plans with
// planClusterScaling each window and starts or drains workers through its provisioner.
import type { NatsConnection, Subscription } from 'nats';
import { createActor, fromPromise, waitFor } from 'xstate';
import { WorkerEvent } from '../../schemas/worker.js';
import { isValid } from '../../schemas/validate.js';
import { subjects } from '../../subjects/index.js';
import { ClusterView } from '../../runtime/views/cluster-view.js';
import { decodeJson, encodeJson } from '../../runtime/bus/codec.js';
import { Lease } from '../../runtime/bus/lease.js';
import type { Logger } from '../../runtime/log.js';
import type { Stores } from '../../runtime/bus/store.js';
import { SettingsView, knobs } from '../../runtime/views/settings-view.js';

import { vmAutoscalerMachine } from './machine.js';
import {
  defaultClusterScalingSettings, initialClusterScalingState, planClusterScaling,
  type ClusterScalingAction, type ClusterScalingSettings, type ClusterScalingState,
} from './plan.js';

/** What the autoscaler needs from a provisioner (cluster/provisioners.ts has the real ones). */
export interface WorkerProvisioner {
  start(hardwareClass: string): Promise<string>;
  stop(workerId: string): Promise<void>;
  managed(): string[];
}

export interface VmAutoscalerConfig {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  controllerId: string;
  provisioner: WorkerProvisioner;
  /** Hardware classes to manage (scale-out targets even before any worker of them exists). */
  classes: string[];
  settings?: Partial<ClusterScalingSettings>;
  /** How often to plan; the lease's TTL is three windows. Default 2 s. */
  windowMs?: number;
  /** A worker still absent from KV this long after its start counts as failed. Default 60 s. */
  startTimeoutMs?: number;
}

export interface VmAutoscaler {
  readonly leading: boolean;
  stop(): Promise<void>;
}

/** An event's JSON, or undefined for bytes that are not (anyone can publish on an events subject). */
function readEvent(data: Uint8Array): unknown {
  try { return decodeJson(data); } catch { return undefined; }
}

export async function startVmAutoscaler(config: VmAutoscalerConfig): Promise<VmAutoscaler> {
  const { nc, stores, provisioner } = config;
  const log = config.log.child({ actor: 'vm-autoscaler', controller: config.controllerId });
  const settings: ClusterScalingSettings = Object.freeze({ ...defaultClusterScalingSettings, ...config.settings });
  const windowMs = config.windowMs ?? 2000;
  const startTimeoutMs = config.startTimeoutMs ?? 60_000;
  const cluster = new ClusterView(log, Math.max(5000, 3 * windowMs));
  await cluster.start(stores);
  // Pauses and knobs set from the console (infaas_settings) apply from the next round.
  const consoleSettings = new SettingsView(log);
  await consoleSettings.start(stores);
  let paused = false;
  const lease = new Lease(stores.leases, 'vm-autoscaler', config.controllerId, 3 * windowMs);
  let state: ClusterScalingState = initialClusterScalingState;
  let unplaced: Record<string, number> = {};
  let mitigations: Record<string, number> = {};
  /** Workers started and not yet seen in KV: id -> class and start time. */
  const starting = new Map<string, { hardwareClass: string; at: number }>();

  const subs: Subscription[] = [
    nc.subscribe(subjects.events.dispatcher, {
      callback: (_e, m) => {
        const e = readEvent(m.data) as { type?: unknown; byClass?: unknown } | undefined;
        if (e?.type !== 'unplaced' || typeof e.byClass !== 'object' || e.byClass === null) return;
        for (const [c, n] of Object.entries(e.byClass)) if (Number.isFinite(n) && n > 0) unplaced[c] = (unplaced[c] ?? 0) + Number(n);
      },
    }),
    nc.subscribe(subjects.events.allWorkers, {
      callback: (_e, m) => {
        const e = readEvent(m.data);
        if (!isValid(WorkerEvent, e) || e.type !== 'mitigation.requested') return;
        const cls = cluster.workers.get(e.worker)?.hardwareClass;
        if (cls) mitigations[cls] = (mitigations[cls] ?? 0) + 1;
      },
    }),
  ];

  const event = (message: string, fields: Record<string, unknown>): void => {
    if (!nc.isClosed()) nc.publish(subjects.events.cluster, encodeJson({ type: 'vm-autoscaler.decision', at: Date.now(), controller: config.controllerId, message, ...fields }));
  };

  const carryOut = async (a: ClusterScalingAction): Promise<void> => {
    event(`${a.type} ${a.hardwareClass}${a.type === 'scale-in' ? ` (${a.worker})` : ''}: ${a.why}`, { action: a.type, hardwareClass: a.hardwareClass, details: a.details });
    log.info({ action: a.type, hardwareClass: a.hardwareClass, why: a.why }, 'vm-autoscaler decision');
    if (a.type === 'scale-out') {
      const id = await provisioner.start(a.hardwareClass);
      starting.set(id, { hardwareClass: a.hardwareClass, at: Date.now() });
    } else {
      await provisioner.stop(a.worker);
    }
  };

  const planAndAct = async (): Promise<void> => {
    const now = Date.now();
    const live = cluster.liveWorkers(now);
    for (const [id, s] of starting) {
      if (live.some((w) => w.id === id) || now - s.at > startTimeoutMs) starting.delete(id);
    }
    const managed = new Set(provisioner.managed());
    const snap = {
      now, classes: config.classes, unplaced, mitigations, starting: [...new Set([...starting.values()].map((s) => s.hardwareClass))],
      workers: live.map((w) => ({
        id: w.id, hardwareClass: w.hardwareClass, threads: w.capacity.threads, threadsReserved: w.usage.threadsReserved,
        cpuCores: w.usage.cpuCores, queued: w.usage.queued, managed: managed.has(w.id),
      })),
    };
    unplaced = {};
    mitigations = {};
    const fromConsole = consoleSettings.vm;
    if (fromConsole.paused) {
      if (!paused) log.info('vm-autoscaler paused from the console: no decisions until resumed');
      paused = true;
      return;
    }
    if (paused) log.info('vm-autoscaler resumed from the console');
    paused = false;
    const plan = planClusterScaling(state, snap, { ...settings, ...knobs(fromConsole) });
    state = plan.state;
    for (const a of plan.actions) await carryOut(a);
  };

  const actor = createActor(vmAutoscalerMachine.provide({
    actors: { planAndAct: fromPromise(planAndAct) },
    actions: {
      reportError: ({ context }) => log.warn({ err: context.error }, 'vm-autoscaler round failed'),
      announce: (_, { role }) => log.info({ role }, role === 'leading' ? 'holding the vm-autoscaler lease' : 'vm-autoscaler on standby'),
    },
  }));
  actor.subscribe({ error: (err) => log.error({ err }, 'vm-autoscaler actor crashed') });
  actor.start();

  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    void lease.hold().then((held) => {
      actor.send({ type: held ? 'lease.acquired' : 'lease.lost' });
      if (held) actor.send({ type: 'tick' });
    }, (err) => log.debug({ err: (err as Error).message }, 'lease check failed')).finally(() => { ticking = false; });
  }, windowMs);

  return {
    get leading() { return actor.getSnapshot().matches('leading'); },
    stop: async () => {
      clearInterval(timer);
      for (const s of subs) s.unsubscribe();
      actor.send({ type: 'stop.requested' });
      await waitFor(actor, (s) => s.status === 'done');
      cluster.stop();
      consoleSettings.stop();
      await lease.release().catch(() => {});
    },
  };
}
