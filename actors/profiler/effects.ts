// Effects of the worker-side profiler: measure variants in a child process and write one profile per
// (variant, hardware class) to KV. Variant files are built by generate.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { fromPromise } from 'xstate';
import type { ModelRecord, ProfileRecord, VariantRecord } from '../../schemas/registry.js';
import { keys, services } from '../../subjects/index.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { publishRegistryEvent } from '../../runtime/bus/events.js';
import type { Logger } from '../../runtime/log.js';
import { parseModel } from '../../runtime/onnx/onnx-session.js';
import { batchSizesUpTo, type MeasureOptions } from './profile-measure.js';
import { runProfileChild } from './profile-process.js';
import { accuracyNote, profileFields } from './profile-record.js';
import { pingInstances } from '../../runtime/bus/service.js';
import { kvCreate, kvGet, kvUpdate, objectBytes, type Stores } from '../../runtime/bus/store.js';
import type { GroupOutcome } from './machine.js';
import type { GeneratorOptions, ProfileGroup } from './plan.js';

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

const now = () => Date.now();

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
    let referencePath: string | undefined;
    if (model.validation) {
      validationPath = join(dir, 'validation.msgpack');
      writeFileSync(validationPath, await objectBytes(stores.repository, model.validation.object));
      // The registered file is the reference that fidelity compares each variant with.
      referencePath = join(dir, 'reference.onnx');
      writeFileSync(referencePath, await objectBytes(stores.repository, model.object));
    }
    const result = await runProfileChild(
      {
        modelPath, referencePath, validationPath, batchSizes: batchSizesUpTo(maxBatch), batched: model.batched,
        inputs: model.inputs, outputs: model.outputs, shapes: model.shapes, metric: model.metric, declaredAccuracy: model.declaredAccuracy,
        options: deps.measure,
        session: { graphOptimizationLevel: sample.optLevel, intraOpThreads: sample.intraOpThreads, executionProvider: sample.executionProvider },
      },
      (progress, note) => publishRegistryEvent(nc, 'profile.progress', group.model, `${group.key}: ${note}`, { variant: sample.id, hardwareClass, progress }),
    );
    for (const c of claimed) await finish(c, { status: 'done', ...profileFields(result, model, c.variant.maxBatch) });
    const p1 = result.latency[0];
    publishRegistryEvent(nc, 'profile.finished', group.model, `${group.key}: load ${result.loadMs.toFixed(1)} ms, batch-1 p50 ${p1.p50Ms.toFixed(3)} ms${accuracyNote(result, model)}`, { variant: sample.id, hardwareClass, progress: 1 });
    log.info({ loadMs: result.loadMs, batch1P50Ms: p1.p50Ms, accuracy: result.accuracy, metric: result.metric, sizes: result.sizes?.length, variants: claimed.length }, 'profiled');
    return { profiled: claimed.length, skipped: group.variants.length - claimed.length };
  } catch (err) {
    const message = (err as Error).message;
    for (const c of claimed) await finish(c, { status: 'failed', error: message }).catch(() => false);
    publishRegistryEvent(nc, 'profile.finished', group.model, `${group.key}: failed: ${message}`, { variant: sample.id, hardwareClass, error: { code: err instanceof InfaasError ? err.code : ErrorCode.ProfilingFailed, message } });
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
