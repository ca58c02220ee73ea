// Hosts the operator's console on a controller: the infaas-admin micro service (JSON) answering a
// cluster summary, autoscaler pause/resume, policy settings, instance pins and registration cancels.
// Settings and pins live in infaas_settings, where the actors watch them (runtime/views/settings-view.ts).
import type { NatsConnection } from 'nats';
import {
  AutoscalerRequest, CancelRequest, ModelAutoscalerSettings, PinRequest, SettingsGetRequest, SettingsSetRequest, SummaryRequest,
  VmAutoscalerSettings, type AutoscalerName, type ModelSummaryRecord, type PinRecord, type SummaryReply,
} from '../../schemas/admin.js';
import { ErrorCode, InfaasError, type ErrorBody } from '../../schemas/errors.js';
import type { ModelRecord } from '../../schemas/registry.js';
import { decodeJson, encodeJson } from '../../runtime/bus/codec.js';
import { validate } from '../../schemas/validate.js';
import { keys, queueGroups, services, subjects } from '../../subjects/index.js';
import { addJsonEndpoint, addService, stopService } from '../../runtime/bus/service.js';
import { kvCreate, kvGet, kvPut, kvUpdate, type Stores } from '../../runtime/bus/store.js';
import type { Logger } from '../../runtime/log.js';
import { ClusterView } from '../../runtime/views/cluster-view.js';
import { SettingsView } from '../../runtime/views/settings-view.js';
import { defaultClusterScalingSettings } from '../vm-autoscaler/index.js';
import { defaultScalingSettings } from '../model-autoscaler/index.js';
import type { Registrar } from '../registrar/index.js';
import { MinuteWindow } from './window.js';

export interface AdminConfig {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  /** The registrar of this controller: cancels go to it. */
  registrar?: Pick<Registrar, 'id' | 'cancel'>;
  /** How often each model's summary is written to infaas_summary. Default 5 s. */
  summaryEveryMs?: number;
}

export interface Admin { readonly id: string; stop(): Promise<void> }

export const ADMIN_VERSION = '0.1.0';

const SCHEMAS = { 'vm-autoscaler': VmAutoscalerSettings, 'model-autoscaler': ModelAutoscalerSettings } as const;
const DEFAULTS: Record<AutoscalerName, Record<string, number | boolean>> = {
  'vm-autoscaler': { paused: false, ...defaultClusterScalingSettings },
  'model-autoscaler': { paused: false, ...defaultScalingSettings },
};

/** The settings an autoscaler has (what `settings.set` accepts), from its record's schema. */
export function settingNames(autoscaler: AutoscalerName): string[] {
  return Object.keys(SCHEMAS[autoscaler].properties).filter((k) => k !== 'updatedAt');
}

export async function startAdmin(config: AdminConfig): Promise<Admin> {
  const { nc, stores } = config;
  const log = config.log.child({ actor: 'admin' });
  const cluster = new ClusterView(log);
  const settings = new SettingsView(log);
  const window = new MinuteWindow();
  cluster.onChange((bucket, key) => {
    if (bucket !== 'instances') return;
    const r = cluster.instances.get(key);
    if (r) { window.add(key, r); return; }
    window.forget(key);
    // An instance's record goes when it unloads: its pin has nothing left to protect (ids are never reused).
    const [worker, instance] = key.split('.');
    if (worker && instance && settings.isPinned(worker, instance)) {
      void stores.settings.purge(keys.pin(worker, instance)).catch((err) => log.debug({ err: (err as Error).message, key }, 'stale pin not removed'));
    }
  });
  await Promise.all([cluster.start(stores), settings.start(stores)]);
  for (const [k, r] of cluster.instances) window.add(k, r);

  const { srv } = await addService(nc, {
    name: services.admin, version: ADMIN_VERSION, queue: queueGroups.admin,
    description: "INFaaS operator's console: summary, autoscaler pause/resume, settings, pins, registration cancel",
  });

  /** The stored record of an autoscaler's settings with its revision (absent: defaults, revision 0). */
  const stored = async (a: AutoscalerName) => (await kvGet<Record<string, unknown>>(stores.settings, keys.autoscalerSettings(a))) ?? { value: {}, revision: 0 };

  /** Compare-and-set: a concurrent console change is re-read and re-applied, never lost. */
  const change = async (a: AutoscalerName, values: Record<string, number | boolean>): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 10; i++) {
      const cur = await stored(a);
      const next = { ...cur.value, ...values, updatedAt: Date.now() };
      try {
        validate(SCHEMAS[a], next, `${a} settings`);
      } catch (err) {
        throw new InfaasError(ErrorCode.InvalidSetting, (err as Error).message.replace(/^invalid /, `invalid value for `), { autoscaler: a, ...((err as InfaasError).details ?? {}) });
      }
      const key = keys.autoscalerSettings(a);
      const ok = cur.revision === 0 ? await kvCreate(stores.settings, key, next) : await kvUpdate(stores.settings, key, next, cur.revision);
      if (ok !== false) return next;
    }
    throw new InfaasError(ErrorCode.Internal, `could not update ${a} settings: too many concurrent writers`);
  };

  const effective = async (a: AutoscalerName) => {
    const cur = await stored(a);
    return { autoscaler: a, settings: { ...DEFAULTS[a], ...cur.value }, stored: cur.value, revision: cur.revision };
  };

  addJsonEndpoint(srv, {
    name: 'summary', subject: subjects.admin.summary, schema: SummaryRequest,
    handle: async (req): Promise<SummaryReply> => {
      const now = Date.now();
      const { windowMs, models } = window.summarize(now);
      const instances = [...cluster.instances.values()].filter((i) => !req.model || i.model === req.model).map((i) => ({
        worker: i.worker, id: i.id, variant: i.variant, model: i.model, state: i.state, ...(i.reason ? { reason: i.reason } : {}),
        queueLength: i.queueLength, arrivalRate: i.arrivalRate, serviceRate: i.serviceRate, deadlineMisses: i.deadlineMisses,
        pinned: settings.isPinned(i.worker, i.id),
      }));
      return {
        at: now, windowMs,
        autoscalers: { 'vm-autoscaler': { paused: settings.vm.paused === true }, 'model-autoscaler': { paused: settings.model.paused === true } },
        workers: cluster.liveWorkers(now).map((w) => ({
          id: w.id, hardwareClass: w.hardwareClass, state: w.state, threads: w.capacity.threads, cpuCores: w.usage.cpuCores,
          instances: w.usage.instances, queued: w.usage.queued, qps: w.usage.qps, heartbeatAt: w.heartbeatAt,
        })),
        instances,
        models: models.filter((m) => !req.model || m.model === req.model)
          .map((m) => ({ ...m, instances: instances.filter((i) => i.model === m.model).length })),
      };
    },
  }, log);

  for (const [name, paused] of [['pause', true], ['resume', false]] as const) {
    addJsonEndpoint(srv, {
      name, subject: subjects.admin[name], schema: AutoscalerRequest,
      handle: async (req) => {
        await change(req.autoscaler, { paused });
        log.info({ autoscaler: req.autoscaler, paused }, `${req.autoscaler} ${paused ? 'paused' : 'resumed'} from the console`);
        return { autoscaler: req.autoscaler, paused };
      },
    }, log);
  }

  addJsonEndpoint(srv, {
    name: 'settings-get', subject: subjects.admin.settingsGet, schema: SettingsGetRequest,
    handle: async (req) => req.autoscaler ? effective(req.autoscaler) : { autoscalers: await Promise.all((['vm-autoscaler', 'model-autoscaler'] as const).map(effective)) },
  }, log);

  addJsonEndpoint(srv, {
    name: 'settings-set', subject: subjects.admin.settingsSet, schema: SettingsSetRequest,
    handle: async (req) => {
      const known = settingNames(req.autoscaler);
      const unknown = Object.keys(req.values).filter((k) => !known.includes(k));
      if (unknown.length > 0) {
        throw new InfaasError(ErrorCode.UnknownSetting, `${req.autoscaler} has no setting ${unknown.map((k) => `"${k}"`).join(', ')}; it has: ${known.join(', ')}`, { autoscaler: req.autoscaler, unknown, known });
      }
      await change(req.autoscaler, req.values);
      return effective(req.autoscaler);
    },
  }, log);

  const instanceOf = (req: { worker: string; instance: string }) => {
    const r = cluster.instances.get(keys.instance(req.worker, req.instance));
    if (!r) throw new InfaasError(ErrorCode.InstanceNotFound, `no instance ${req.instance} on worker ${req.worker} (list them with: nats req infaas.admin.summary '{}')`, { ...req });
    return r;
  };

  addJsonEndpoint(srv, {
    name: 'pin', subject: subjects.admin.pin, schema: PinRequest,
    handle: async (req) => {
      const r = instanceOf(req);
      const pin: PinRecord = { worker: req.worker, instance: req.instance, variant: r.variant, pinnedAt: Date.now() };
      await kvPut(stores.settings, keys.pin(req.worker, req.instance), pin);
      return { ...pin, pinned: true };
    },
  }, log);

  addJsonEndpoint(srv, {
    name: 'unpin', subject: subjects.admin.unpin, schema: PinRequest,
    handle: async (req) => {
      // Unpinning an instance that has gone since is allowed: it only removes the stale pin.
      const key = keys.pin(req.worker, req.instance);
      const was = await kvGet(stores.settings, key);
      if (!was) throw new InfaasError(ErrorCode.InstanceNotFound, `instance ${req.instance} on worker ${req.worker} is not pinned`, { ...req });
      await stores.settings.purge(key);
      return { worker: req.worker, instance: req.instance, pinned: false };
    },
  }, log);

  /** A cancel for the registrar that runs the registration (another controller's): its answer or error, as it gave it. */
  const forward = async (registrar: string, name: string): Promise<unknown> => {
    const reply = await nc.request(subjects.admin.cancelOwned(registrar), encodeJson({ name }), { timeout: 70_000 }).catch((err: Error & { code?: string }) => {
      if (err.code === '503') {
        throw new InfaasError(ErrorCode.RegistrationNotFound, `the registrar running "${name}" (${registrar}) is gone; the next registrar to start rolls it back`, { name, registrar });
      }
      throw err;
    });
    const body = decodeJson(reply.data);
    if (reply.headers?.get('Nats-Service-Error-Code')) throw InfaasError.fromBody(body as ErrorBody);
    return body;
  };

  addJsonEndpoint(srv, {
    name: 'cancel', subject: subjects.admin.cancel, schema: CancelRequest,
    handle: async (req) => {
      const local = config.registrar;
      const m = (await kvGet<ModelRecord>(stores.models, keys.model(req.name)))?.value;
      if (m && m.status !== 'registered' && m.registrar && m.registrar !== local?.id) return forward(m.registrar, req.name);
      if (!local) throw new InfaasError(ErrorCode.RegistrationNotFound, `no registration of "${req.name}" is in progress`, { name: req.name });
      return local.cancel(req.name);
    },
  }, log);

  // Every controller writes the same numbers (each watches every instance): last writer wins.
  const id = srv.info().id;
  let writing = false;
  const timer = setInterval(() => {
    if (writing || nc.isClosed()) return;
    writing = true;
    const now = Date.now();
    const { windowMs, models } = window.summarize(now);
    void Promise.all(models.map((m) => kvPut<ModelSummaryRecord>(stores.summary, keys.model(m.model), {
      ...m, instances: [...cluster.instances.values()].filter((i) => i.model === m.model).length, at: now, windowMs, controller: id,
    }))).catch((err) => log.debug({ err: (err as Error).message }, 'summary records not written')).finally(() => { writing = false; });
  }, config.summaryEveryMs ?? 5000);

  log.info('admin service started');
  return {
    id,
    stop: async () => {
      clearInterval(timer);
      await stopService(srv, log);
      cluster.stop();
      settings.stop();
    },
  };
}
