// Effects of the worker-side variant generator and profiler: build variant files, measure them in a
// child process, and write one profile per (variant, hardware class) to KV.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { fromPromise } from 'xstate';
import type { ModelRecord, ProfileRecord, VariantRecord } from '../../schemas/registry.js';
import { keys, objects, services } from '../../subjects/index.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { publishRegistryEvent } from '../../runtime/bus/events.js';
import type { Logger } from '../../runtime/log.js';
import { parseModel } from '../../runtime/onnx/onnx-session.js';
import { batchSizesUpTo, type MeasureOptions } from './profile-measure.js';
import { runProfileChild } from './profile-process.js';
import { pingInstances } from '../../runtime/bus/service.js';
import { quantizeInThread } from '../../runtime/onnx/quantize-offload.js';
import { kvCreate, kvGet, kvUpdate, objectBytes, putObject, type Stores } from '../../runtime/bus/store.js';
import type { GroupOutcome } from './machine.js';
import { planVariants, type GeneratorOptions, type ProfileGroup, type VariantFile } from './plan.js';

export interface ProfilerDeps {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  workerId: string;
  hardwareClass: string;
  /** Threads this worker may use; variants wanting more are recorded as unsupported here. */
  threads: number;
  generator: GeneratorOptions;
  measure: MeasureOptions;
}

const now = () => new Date().toISOString();

/** Builds the variant files of a model (fp32 as registered, int8 quantised) and plans its variants. */
export async function generateVariants(deps: ProfilerDeps, model: ModelRecord): Promise<VariantRecord[]> {
  const bytes = await objectBytes(deps.stores.repository, model.object);
  const files: Partial<Record<'fp32' | 'int8', VariantFile>> = {};
  if (deps.generator.precisions.includes('fp32')) {
    await putObject(deps.stores.repository, objects.variant(model.name, 'fp32'), bytes, `${model.name}: fp32 variant`);
    files.fp32 = { object: objects.variant(model.name, 'fp32'), sizeBytes: bytes.byteLength };
  }
  if (deps.generator.precisions.includes('int8')) {
    try {
      const { bytes: qb, report } = await quantizeInThread(bytes);
      if (qb) {
        await putObject(deps.stores.repository, objects.variant(model.name, 'int8'), qb, `${model.name}: int8 dynamic-quantised variant`);
        files.int8 = { object: objects.variant(model.name, 'int8'), sizeBytes: qb.byteLength };
      } else {
        deps.log.info({ model: model.name, skipped: report.skippedNodes }, 'no weights to quantise: no int8 variants');
      }
    } catch (err) {
      deps.log.warn({ model: model.name, err: (err as Error).message }, 'int8 quantisation not possible: no int8 variants');
    }
  }
  const variants = planVariants(model, deps.generator, files, now());
  if (variants.length === 0) throw new InfaasError(ErrorCode.GenerationFailed, `no variants could be generated for ${model.name}`);
  return variants;
}

async function loadModel(deps: ProfilerDeps, name: string): Promise<ModelRecord> {
  const m = await kvGet<ModelRecord>(deps.stores.models, keys.model(name));
  if (!m) throw new InfaasError(ErrorCode.ModelNotFound, `model ${name} is gone`);
  return m.value;
}

/** Worker ids of the profilers answering a micro-service PING now. */
export async function liveProfilerIds(nc: NatsConnection): Promise<Set<string>> {
  return new Set((await pingInstances(nc, services.profiler)).map((i) => i.metadata.workerId).filter((id): id is string => Boolean(id)));
}

/**
 * Claims a profile key: a KV create, or, when the key holds a 'running' claim of a profiler that
 * no longer answers pings (it died mid-run), a compare-and-set over that claim.
 */
async function claim(deps: ProfilerDeps, key: string, started: ProfileRecord, live: () => Promise<Set<string>>): Promise<number | false> {
  const created = await kvCreate(deps.stores.profiles, key, started);
  if (created !== false) return created;
  const cur = await kvGet<ProfileRecord>(deps.stores.profiles, key);
  if (!cur || cur.value.status !== 'running' || (await live()).has(cur.value.worker)) return false;
  deps.log.warn({ key, abandonedBy: cur.value.worker }, 'taking over a profile abandoned by a stopped profiler');
  return kvUpdate(deps.stores.profiles, key, started, cur.revision);
}

/** Claims, measures and records one group of variants that share a session configuration. */
async function profileGroup(deps: ProfilerDeps, group: ProfileGroup): Promise<GroupOutcome> {
  const { stores, nc, hardwareClass } = deps;
  const log = deps.log.child({ group: group.key });
  const claimed: { variant: VariantRecord; key: string; revision: number; started: ProfileRecord }[] = [];
  let liveSet: Promise<Set<string>> | undefined;
  const live = () => (liveSet ??= liveProfilerIds(nc));
  for (const v of group.variants) {
    const key = keys.profile(v.id, hardwareClass);
    const started: ProfileRecord = { variant: v.id, model: v.model, hardwareClass, status: 'running', worker: deps.workerId, startedAt: now() };
    const revision = await claim(deps, key, started, live);
    if (revision !== false) claimed.push({ variant: v, key, revision, started });
  }
  if (claimed.length === 0) return { profiled: 0, skipped: group.variants.length };
  const finish = async (c: (typeof claimed)[number], fields: Partial<ProfileRecord>) =>
    kvUpdate(stores.profiles, c.key, { ...c.started, ...fields, finishedAt: now() }, c.revision);
  const sample = claimed[0].variant;
  if (sample.intraOpThreads > deps.threads) {
    for (const c of claimed) await finish(c, { status: 'unsupported', error: `needs ${sample.intraOpThreads} threads; ${hardwareClass} has ${deps.threads}` });
    return { profiled: 0, skipped: claimed.length };
  }
  const model = await loadModel(deps, group.model);
  const dir = mkdtempSync(join(tmpdir(), 'infaas-profile-'));
  const maxBatch = Math.max(...claimed.map((c) => c.variant.maxBatch));
  publishRegistryEvent(nc, 'profile.started', group.model, `profiling ${group.key} on ${hardwareClass}`, { variant: sample.id, hardwareClass, progress: 0 });
  try {
    const modelPath = join(dir, 'model.onnx');
    const bytes = await objectBytes(stores.repository, sample.object);
    parseModel(bytes); // a corrupt file fails here, before a child process is spent on it
    writeFileSync(modelPath, bytes);
    let validationPath: string | undefined;
    if (model.validation) {
      validationPath = join(dir, 'validation.msgpack');
      writeFileSync(validationPath, await objectBytes(stores.repository, model.validation.object));
    }
    const result = await runProfileChild(
      {
        modelPath, validationPath, batchSizes: batchSizesUpTo(maxBatch), inputs: model.inputs, outputs: model.outputs, options: deps.measure,
        session: { graphOptimizationLevel: sample.optLevel, intraOpThreads: sample.intraOpThreads, executionProvider: sample.executionProvider },
      },
      (progress, note) => publishRegistryEvent(nc, 'profile.progress', group.model, `${group.key}: ${note}`, { variant: sample.id, hardwareClass, progress }),
    );
    for (const c of claimed) {
      const accuracy = result.accuracy ?? model.declaredAccuracy;
      await finish(c, {
        status: 'done', loadMs: result.loadMs, peakMemoryBytes: result.peakMemoryBytes,
        latency: result.latency.filter((p) => p.batch <= c.variant.maxBatch),
        ...(accuracy !== undefined ? { accuracy, accuracySource: result.accuracy !== undefined ? 'measured' as const : 'declared' as const } : {}),
        ...(result.validationSamples ? { validationSamples: result.validationSamples } : {}),
      });
    }
    const p1 = result.latency[0];
    publishRegistryEvent(nc, 'profile.finished', group.model, `${group.key}: load ${result.loadMs.toFixed(1)} ms, batch-1 p50 ${p1.p50Ms.toFixed(3)} ms${result.accuracy !== undefined ? `, accuracy ${(result.accuracy * 100).toFixed(2)}%` : ''}`, { variant: sample.id, hardwareClass, progress: 1 });
    log.info({ loadMs: result.loadMs, batch1P50Ms: p1.p50Ms, accuracy: result.accuracy, variants: claimed.length }, 'profiled');
    return { profiled: claimed.length, skipped: group.variants.length - claimed.length };
  } catch (err) {
    const message = (err as Error).message;
    for (const c of claimed) await finish(c, { status: 'failed', error: message }).catch(() => false);
    publishRegistryEvent(nc, 'profile.finished', group.model, `${group.key}: failed: ${message}`, { variant: sample.id, hardwareClass, error: { code: ErrorCode.ProfilingFailed, message } });
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function profilerActors(deps: ProfilerDeps) {
  return {
    profileGroup: fromPromise<GroupOutcome, { group: ProfileGroup }>(({ input }) => profileGroup(deps, input.group)),
  };
}
