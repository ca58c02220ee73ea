// Hosts the profiler on a worker: the infaas-profiler micro service (variant generation) and the
// profiling queue, fed by a watch on the models bucket: any model that has variants without a
// profile for this worker's hardware class gets profiled, including models registered earlier.
import { availableParallelism } from 'node:os';
import { nanoid } from 'nanoid';
import type { NatsConnection } from 'nats';
import { createActor } from 'xstate';
import { GenerateRequest, type ModelRecord, type ProfileRecord, type VariantRecord } from '../../schemas/registry.js';
import { keys, services, subjects } from '../../subjects/index.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import type { Logger } from '../../runtime/log.js';
import { availableProviders } from '../../runtime/onnx/onnx-session.js';
import { defaultMeasureOptions, type MeasureOptions } from './profile-measure.js';
import { addJsonEndpoint, addService, stopService } from '../../runtime/bus/service.js';
import { entryValue, kvGet, type Stores } from '../../runtime/bus/store.js';
import { liveProfilerIds, profilerActors, type ProfilerDeps } from './effects.js';
import { generateVariants } from './generate.js';
import { profilerMachine } from './machine.js';
import { defaultGeneratorOptions, groupForProfiling, type GeneratorOptions } from './plan.js';

export interface ProfilerConfig {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  workerId?: string;
  /** Default: cpu-<N>t for N usable threads. */
  hardwareClass?: string;
  threads?: number;
  generator?: Partial<GeneratorOptions>;
  measure?: Partial<MeasureOptions>;
}

export interface Profiler {
  readonly workerId: string;
  readonly hardwareClass: string;
  stop(): Promise<void>;
}

export async function startProfiler(config: ProfilerConfig): Promise<Profiler> {
  const threads = config.threads ?? availableParallelism();
  const hardwareClass = config.hardwareClass ?? `cpu-${threads}t`;
  const workerId = config.workerId ?? `worker-${nanoid(8)}`;
  const log = config.log.child({ actor: 'profiler', workerId, hardwareClass });
  const providers = availableProviders();
  const generator: GeneratorOptions = Object.freeze({
    ...defaultGeneratorOptions,
    providers: defaultGeneratorOptions.providers.filter((p) => providers.includes(p)),
    ...config.generator,
  });
  const deps: ProfilerDeps = {
    nc: config.nc, stores: config.stores, log, workerId, hardwareClass, threads, generator,
    measure: Object.freeze({ ...defaultMeasureOptions, ...config.measure }),
  };
  const actor = createActor(profilerMachine.provide({
    actors: profilerActors(deps),
    actions: { recordFailure: (_, { group, error }) => log.error({ group: group.key, err: (error as Error)?.message }, 'profiling failed') },
  }));
  actor.subscribe({ error: (err) => log.error({ err }, 'profiler actor crashed') });
  actor.start();

  const { srv } = await addService(config.nc, {
    name: services.profiler, version: '0.1.0', queue: 'infaas-profilers',
    description: 'INFaaS variant generator and profiler', metadata: { hardwareClass, workerId },
  });
  addJsonEndpoint(srv, {
    name: 'generate', subject: subjects.profiler.generate, schema: GenerateRequest,
    handle: async (req) => {
      const m = await kvGet<ModelRecord>(config.stores.models, keys.model(req.model));
      if (!m) throw new InfaasError(ErrorCode.ModelNotFound, `model ${req.model} is not in the registry`);
      const { variants, skipped } = await generateVariants(deps, m.value);
      return { variants, ...(skipped.length > 0 ? { skipped } : {}) };
    },
  }, log);

  // Work discovery: a model in 'profiling' or 'registered' whose variants lack our class's profile,
  // or whose profile is still 'running' under a profiler that has since died.
  const discover = async (model: ModelRecord) => {
    const pending: VariantRecord[] = [];
    let live: Set<string> | undefined;
    for (const id of model.variants) {
      const p = await kvGet<ProfileRecord>(config.stores.profiles, keys.profile(id, hardwareClass));
      if (p && p.value.status !== 'running') continue;
      if (p && (live ??= await liveProfilerIds(config.nc)).has(p.value.worker)) continue;
      const v = await kvGet<VariantRecord>(config.stores.variants, id);
      if (v) pending.push(v.value);
    }
    if (pending.length > 0) actor.send({ type: 'work.found', groups: groupForProfiling(pending) });
  };
  const watch = await config.stores.models.watch({ key: '>' });
  void (async () => {
    for await (const e of watch) {
      const m = entryValue<ModelRecord>(e);
      if (m && (m.status === 'profiling' || m.status === 'registered')) {
        await discover(m).catch((err) => {
          // A discovery cut short by shutdown is expected; anything else is worth a warning.
          if (!config.nc.isClosed() && !config.nc.isDraining()) log.warn({ model: m.name, err: (err as Error).message }, 'work discovery failed');
        });
      }
    }
  })();

  log.info({ threads, providers: generator.providers }, 'profiler started');
  return {
    workerId, hardwareClass,
    stop: async () => {
      watch.stop();
      await stopService(srv, log);
      actor.send({ type: 'stop.requested' });
    },
  };
}

export type { ProfileRecord };
