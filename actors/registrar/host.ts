// Hosts the registrar: the infaas-registry micro service, one registration actor per request, and
// an in-memory view of the registry rebuilt from KV watches on every start.
import { nanoid } from 'nanoid';
import type { NatsConnection } from 'nats';
import { createActor, waitFor, type ActorRefFrom } from 'xstate';
import { ModelsRequest, NameRequest, RegisterRequest, type ModelRecord, type RegisterReply } from '../../schemas/registry.js';
import { CancelRequest } from '../../schemas/admin.js';
import { services, subjects } from '../../subjects/index.js';
import { ErrorCode, InfaasError, type ErrorCode as Code } from '../../schemas/errors.js';
import { publishRegistryEvent } from '../../runtime/bus/events.js';
import type { Logger } from '../../runtime/log.js';
import { RegistryView } from '../../runtime/views/registry-view.js';
import { addJsonEndpoint, addService, pingInstances, stopService } from '../../runtime/bus/service.js';
import type { Stores } from '../../runtime/bus/store.js';
import { defaultRegistrarOptions, registrationActors, removeModel, type RegistrarOptions } from './effects.js';
import { registrationMachine } from './machine.js';

export interface Registrar {
  readonly id: string;
  readonly view: RegistryView;
  /**
   * Cancels a registration this registrar is running: while generating or profiling it rolls back
   * (registration.failed with code CANCELLED); resolves once the rollback is done.
   */
  cancel(name: string): Promise<{ model: string; cancelled: true; from: string }>;
  stop(): Promise<void>;
}

export interface RegistrarConfig {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  options?: Partial<Omit<RegistrarOptions, 'registrarId'>>;
}

export const VERSION = '0.1.0';

export async function startRegistrar(config: RegistrarConfig): Promise<Registrar> {
  const { nc, stores } = config;
  const view = new RegistryView(config.log);
  await view.start(stores);
  const { srv } = await addService(nc, {
    name: services.registry, version: VERSION, description: 'INFaaS model registry: register, list, inspect, unregister models',
    queue: 'infaas-registrars',
  });
  const id = srv.info().id;
  const log = config.log.child({ actor: 'registrar', id });
  const options: RegistrarOptions = Object.freeze({ ...defaultRegistrarOptions, ...config.options, registrarId: id });
  const deps = { nc, stores, log, options };
  const running = new Map<string, ActorRefFrom<typeof registrationMachine>>();

  // A registration whose registrar died part-way is rolled back, so nothing half-registered stays.
  const alive = new Set((await pingInstances(nc, services.registry)).map((i) => i.id));
  for (const m of view.models.values()) {
    if (m.status !== 'registered' && !alive.has(m.registrar)) {
      log.warn({ model: m.name, status: m.status, registrar: m.registrar }, 'rolling back a registration abandoned by a stopped registrar');
      await removeModel(stores, m.name);
      publishRegistryEvent(nc, 'registration.failed', m.name, 'registration abandoned by a stopped registrar: rolled back', { error: { code: ErrorCode.Internal, message: 'registrar stopped' } });
    }
  }

  addJsonEndpoint(srv, {
    name: 'register', subject: subjects.registry.register, schema: RegisterRequest,
    handle: (request) => new Promise<RegisterReply>((resolve, reject) => {
      // Every event of this attempt carries its id: a caller racing another for the same name
      // follows its own attempt, not the other's refusal on the shared events subject.
      const registration = nanoid(10);
      const machine = registrationMachine.provide({
        actors: registrationActors(deps),
        actions: {
          accept: (_, { model }) => resolve({ model: model.name, status: model.status, events: subjects.events.model(model.name), registration }),
          reject: (_, { error }) => reject(new InfaasError(Object.values(ErrorCode).includes(error.code as Code) ? (error.code as Code) : ErrorCode.Internal, error.message)),
          report: (_, p) => publishRegistryEvent(nc, p.type, request.name, p.message, { registration, ...(p.error ? { error: p.error } : {}) }),
        },
      });
      const actor = createActor(machine, { input: { request }, id: `registration-${request.name}-${registration}` });
      actor.subscribe({
        next: (s) => log.debug({ model: request.name, state: s.value }, 'registration state'),
        error: (err) => { log.error({ err, model: request.name }, 'registration actor crashed'); reject(err); },
        complete: () => {
          if (running.get(request.name) === actor) running.delete(request.name);
          const out = actor.getSnapshot().output;
          if (out?.status === 'failed') log.warn({ model: request.name, error: out.error }, 'registration failed');
          else log.info({ model: request.name }, 'model registered');
        },
      });
      actor.start();
      if (actor.getSnapshot().status === 'active') running.set(request.name, actor);
    }),
  }, log);

  addJsonEndpoint(srv, {
    name: 'models', subject: subjects.registry.models, schema: ModelsRequest,
    handle: async (req) => ({ models: view.modelsByTask(req.task) }),
  }, log);

  const known = (name: string): ModelRecord => {
    const m = view.models.get(name);
    if (!m || !m.task) throw new InfaasError(ErrorCode.ModelNotFound, `no model named "${name}" (list them with: infaas models)`, { name });
    return m;
  };

  addJsonEndpoint(srv, {
    name: 'info', subject: subjects.registry.info, schema: NameRequest,
    handle: async (req) => ({ model: known(req.name), variants: view.variantsOf(req.name) }),
  }, log);

  addJsonEndpoint(srv, {
    name: 'unregister', subject: subjects.registry.unregister, schema: NameRequest,
    handle: async (req) => {
      const m = known(req.name);
      if (m.status !== 'registered') throw new InfaasError(ErrorCode.ModelBusy, `"${req.name}" is still being registered (${m.status}); try again when it finishes`);
      const removed = await removeModel(stores, req.name);
      publishRegistryEvent(nc, 'model.unregistered', req.name, `${req.name} unregistered`);
      return { removed };
    },
  }, log);

  const cancel = async (name: string): Promise<{ model: string; cancelled: true; from: string }> => {
    const actor = running.get(name);
    if (!actor) throw new InfaasError(ErrorCode.RegistrationNotFound, `no registration of "${name}" is in progress on registrar ${id}`, { name, registrar: id });
    const from = String(actor.getSnapshot().value);
    if (from !== 'generating' && from !== 'profiling') {
      throw new InfaasError(ErrorCode.NotCancellable, `the registration of "${name}" is ${from}: it can be cancelled while generating or profiling; try again in a moment`, { name, state: from, retryAfterMs: 1000 });
    }
    actor.send({ type: 'cancel.requested' });
    await waitFor(actor, (s) => s.status === 'done', { timeout: 60_000 });
    log.info({ model: name, from }, 'registration cancelled by the operator');
    return { model: name, cancelled: true, from };
  };

  // The console's cancel of a registration this registrar runs (forwarded by any controller's infaas-admin).
  addJsonEndpoint(srv, {
    name: 'cancel', subject: subjects.admin.cancelOwned(id), schema: CancelRequest,
    handle: (req) => cancel(req.name),
  }, log);

  log.info({ models: view.models.size }, 'registrar started');
  return {
    id, view, cancel,
    stop: async () => {
      await stopService(srv, log);
      for (const a of running.values()) a.stop();
      view.stop();
    },
  };
}
