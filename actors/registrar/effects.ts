// Effects of the registration lifecycle: repository and KV work behind the machine's named actors.
import type { NatsConnection } from 'nats';
import { fromPromise } from 'xstate';
import type { GenerateReply, Metric, ModelRecord, ProfileRecord, ProfileShape, RegisterRequest, VariantRecord } from '../../schemas/registry.js';
import { GenerateReply as GenerateReplySchema } from '../../schemas/registry.js';
import { validate as validateSchema } from '../../schemas/validate.js';
import { keys, objects, services, subjects } from '../../subjects/index.js';
import { decodeJson, encodeJson } from '../../runtime/bus/codec.js';
import { ErrorCode, InfaasError, type ErrorBody } from '../../schemas/errors.js';
import { publishRegistryEvent } from '../../runtime/bus/events.js';
import type { Logger } from '../../runtime/log.js';
import { createSession, modelSignature, parseModel, signatureMismatches } from '../../runtime/onnx/onnx-session.js';
import {
  deleteObjects, entryValue, kvCreate, kvGet, kvModify, kvPurgeAll, kvPurgeAt, kvUpdate, objectBytes, putObject, type Stores,
} from '../../runtime/bus/store.js';
import { parseValidationSet } from '../../runtime/validation-set.js';
import type { Generated, ProfilingSummary } from './machine.js';
import { resolveBatchAxes } from '../../runtime/onnx/batch-axes.js';
import { resolveProfileShapes } from './shapes.js';
import type { TensorSpec } from '../../schemas/tensor.js';

export interface RegistrarOptions {
  /** Largest model file accepted (bytes). */
  maxModelBytes: number;
  /** How long generation may take before the registration fails. */
  generateTimeoutMs: number;
  /** How long profiling of all variants may take before the registration fails. */
  profileTimeoutMs: number;
  /** Identifies this registrar in model records (which controller owns an in-progress registration). */
  registrarId: string;
}

export const defaultRegistrarOptions: Omit<RegistrarOptions, 'registrarId'> = {
  maxModelBytes: 256 * 1024 * 1024,
  generateTimeoutMs: 120_000,
  profileTimeoutMs: 30 * 60_000,
};

export interface RegistrarDeps {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  options: RegistrarOptions;
}

const now = () => Date.now();

function bad(message: string, details?: Record<string, unknown>): InfaasError {
  return new InfaasError(ErrorCode.BadRequest, message, details);
}

/** What accuracy means for this model, or a BAD_REQUEST saying which combination cannot support a number. */
function checkMetricRequest(req: RegisterRequest): void {
  if (!req.validation && req.declaredAccuracy === undefined) {
    throw bad('give a validation set ("validation"), a declared accuracy ("declaredAccuracy"), or both with metric fidelity (variants then carry declared x fidelity)');
  }
  if (req.metric && !req.validation) {
    throw bad(`metric ${req.metric.kind} needs a validation set: without one the only figure is the declared accuracy`);
  }
  if (req.validation && req.declaredAccuracy !== undefined && req.metric && req.metric.kind !== 'fidelity') {
    throw bad(`metric ${req.metric.kind} is measured on the validation set's labels; a declared accuracy goes with metric fidelity (or without a validation set)`);
  }
}

async function checkAndStore(deps: RegistrarDeps, req: RegisterRequest): Promise<ModelRecord> {
  const { stores, options } = deps;
  checkMetricRequest(req);
  const info = await stores.repository.info(req.object);
  if (!info || info.deleted) {
    throw new InfaasError(ErrorCode.ObjectNotFound, `object "${req.object}" is not in the model repository: upload it first (infaas register does this, or: nats obj put infaas_repo FILE --name ${req.object})`, { object: req.object });
  }
  if (info.size > options.maxModelBytes) {
    throw new InfaasError(ErrorCode.PayloadTooLarge, `model file is ${info.size} bytes; the limit is ${options.maxModelBytes}`);
  }
  const bytes = await objectBytes(stores.repository, req.object);
  const proto = parseModel(bytes);
  try {
    const s = await createSession(bytes, { graphOptimizationLevel: 'basic', intraOpThreads: 1, executionProvider: 'cpu' });
    await s.release();
  } catch (err) {
    throw new InfaasError(ErrorCode.ModelLoadFailed, `ONNX Runtime cannot load "${req.object}": ${(err as Error).message.split('\n')[0]}`);
  }
  // The file says names, dtypes, shapes and dimension names; the request overrides or completes them.
  const sig = modelSignature(proto);
  const problems = [
    ...(req.inputs ? signatureMismatches(req.inputs, sig.inputs, 'input') : []),
    ...(req.outputs ? signatureMismatches(req.outputs, sig.outputs, 'output') : []),
  ];
  if (problems.length > 0) {
    throw new InfaasError(ErrorCode.SignatureMismatch, `declared inputs/outputs do not match the model: ${problems.join('; ')}`, { problems, model: { inputs: sig.inputs, outputs: sig.outputs } });
  }
  const axes = resolveBatchAxes(sig, { inputs: req.inputs, outputs: req.outputs, batchAxes: req.batchAxes });
  const { inputs, outputs } = axes;
  if (req.metric?.output && !outputs.some((o: TensorSpec) => o.name === req.metric!.output)) {
    throw bad(`metric output "${req.metric.output}" is not an output of the model (it has ${outputs.map((o: TensorSpec) => o.name).join(', ')})`);
  }
  let validation: ModelRecord['validation'];
  let validationBytes: Uint8Array | undefined;
  let metric: Metric | undefined = req.metric;
  let sampleShapes: ProfileShape[] | undefined;
  if (req.validation) {
    const vinfo = await stores.repository.info(req.validation.object);
    if (!vinfo || vinfo.deleted) {
      throw new InfaasError(ErrorCode.ObjectNotFound, `validation set "${req.validation.object}" is not in the model repository`, { object: req.validation.object });
    }
    validationBytes = await objectBytes(stores.repository, req.validation.object);
    const set = parseValidationSet(validationBytes, inputs, outputs, metric);
    if (!metric) {
      // Without a metric: labels say which (class indices top1, strings ctc); no labels, or a
      // declared accuracy beside the set, mean fidelity to the registered model.
      metric = set.labelKind === 'none' || req.declaredAccuracy !== undefined ? { kind: 'fidelity' } : set.labelKind === 'text' ? { kind: 'ctc' } : { kind: 'top1' };
      parseValidationSet(validationBytes, inputs, outputs, metric); // the default must fit too
    }
    sampleShapes = set.shapes;
    validation = { object: objects.validationSet(req.name), samples: set.samples };
  }
  const shapes = resolveProfileShapes(inputs, req.shapes, sampleShapes, sig.dimNames);
  await putObject(stores.repository, objects.model(req.name), bytes, `${req.name}: registered model`);
  if (validationBytes) await putObject(stores.repository, objects.validationSet(req.name), validationBytes, `${req.name}: validation set`);
  return {
    name: req.name, task: req.task, dataset: req.dataset, framework: 'onnx', inputs, outputs,
    submitter: req.submitter, ...(req.description ? { description: req.description } : {}),
    status: 'generating', object: objects.model(req.name), sizeBytes: bytes.byteLength,
    ...(validation ? { validation } : {}), ...(req.declaredAccuracy !== undefined ? { declaredAccuracy: req.declaredAccuracy } : {}),
    ...(metric ? { metric } : {}), ...(shapes ? { shapes } : {}),
    batched: axes.batched, ...(axes.reason ? { unbatchedReason: axes.reason } : {}),
    variants: [], registrar: deps.options.registrarId, createdAt: now(), updatedAt: now(),
  };
}

/** Deletes everything a registration may have written: records, profiles, variant and model files. */
export async function removeModel(stores: Stores, name: string): Promise<{ variants: number; profiles: number; objects: number }> {
  const profiles = await kvPurgeAll(stores.profiles, keys.profilesOf(name));
  const variants = await kvPurgeAll(stores.variants, keys.variantsOf(name));
  const objectCount = await deleteObjects(stores.repository, objects.ownedBy(name));
  await stores.models.purge(keys.model(name));
  return { variants, profiles, objects: objectCount };
}

async function requestJson(nc: NatsConnection, subject: string, body: unknown, timeout: number): Promise<unknown> {
  const reply = await nc.request(subject, encodeJson(body), { timeout }).catch((err: Error & { code?: string }) => {
    if (err.code === '503') throw new InfaasError(ErrorCode.NoProfiler, 'no profiler/generator worker is running: start one with `infaas worker` (or `infaas up`)');
    if (err.code === 'TIMEOUT') throw new InfaasError(ErrorCode.Timeout, `${subject} did not answer within ${timeout} ms`);
    throw err;
  });
  const data = decodeJson(reply.data);
  if (reply.headers?.get('Nats-Service-Error-Code')) throw InfaasError.fromBody(data as ErrorBody);
  return data;
}

async function awaitProfiles(deps: RegistrarDeps, model: ModelRecord, variants: VariantRecord[], signal: AbortSignal): Promise<ProfilingSummary> {
  const { stores, nc, options } = deps;
  // Fail fast when no profiler exists at all, rather than waiting out the whole timeout.
  const pings = await nc.request(`$SRV.PING.${services.profiler}`, new Uint8Array(), { timeout: 2000 }).catch(() => undefined);
  if (!pings) throw new InfaasError(ErrorCode.NoProfiler, 'no profiler worker is running: start one with `infaas worker` (or `infaas up`)');
  const ids = new Set(variants.map((v) => v.id));
  const byClass = new Map<string, Map<string, ProfileRecord>>();
  const iter = await stores.profiles.watch({ key: keys.profilesOf(model.name) });
  const timer = setTimeout(() => iter.stop(), options.profileTimeoutMs);
  const abort = () => iter.stop();
  signal.addEventListener('abort', abort);
  try {
    for await (const e of iter) {
      const p = entryValue<ProfileRecord>(e);
      if (!p || !ids.has(p.variant)) continue;
      if (p.status === 'failed') throw new InfaasError(ErrorCode.ProfilingFailed, `profiling ${p.variant} on ${p.hardwareClass} failed: ${p.error ?? 'unknown error'}`);
      const cls = byClass.get(p.hardwareClass) ?? new Map<string, ProfileRecord>();
      byClass.set(p.hardwareClass, cls);
      cls.set(p.variant, p);
      const terminal = [...cls.values()].filter((x) => x.status === 'done' || x.status === 'unsupported');
      publishRegistryEvent(nc, 'registration.progress', model.name, `${terminal.length}/${ids.size} variants profiled on ${p.hardwareClass}`, { progress: terminal.length / ids.size, hardwareClass: p.hardwareClass });
      if (terminal.length === ids.size && terminal.some((x) => x.status === 'done')) {
        return { hardwareClass: p.hardwareClass, profiled: terminal.filter((x) => x.status === 'done').length, unsupported: terminal.filter((x) => x.status === 'unsupported').length };
      }
    }
    throw new InfaasError(signal.aborted ? ErrorCode.Internal : ErrorCode.Timeout, signal.aborted ? 'registrar stopped' : `profiling did not finish within ${options.profileTimeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', abort);
    iter.stop();
  }
}

/** The named actors for registrationMachine.provide(). */
export function registrationActors(deps: RegistrarDeps) {
  const { stores, nc, options } = deps;
  return {
    validate: fromPromise<ModelRecord, { request: RegisterRequest }>(async ({ input }) => {
      const req = input.request;
      const key = keys.model(req.name);
      const claim: Partial<ModelRecord> = { name: req.name, status: 'validating', registrar: options.registrarId, createdAt: now(), updatedAt: now() };
      // The claim is a compare-and-set create: of concurrent registrations of one name exactly one
      // gets a revision; every later write of this attempt is conditional on that revision, so an
      // attempt that lost its claim (rolled back as abandoned) neither overwrites nor removes another's.
      const claimed = await kvCreate(stores.models, key, claim);
      if (claimed === false) {
        throw new InfaasError(ErrorCode.DuplicateModel, `a model named "${req.name}" is already registered (unregister it first, or choose another name)`, { name: req.name });
      }
      try {
        const record = await checkAndStore(deps, req);
        if ((await kvUpdate(stores.models, key, record, claimed)) === false) {
          throw new InfaasError(ErrorCode.ModelBusy, `the claim on "${req.name}" was taken over while it was validated; try again`, { name: req.name });
        }
        return record;
      } catch (err) {
        // Only the claim's holder removes files and the record; a lost claim leaves both to their new owner.
        const ours = await kvPurgeAt(stores.models, key, claimed).catch(() => false);
        if (ours) await deleteObjects(stores.repository, objects.ownedBy(req.name)).catch(() => 0);
        throw err;
      }
    }),
    generate: fromPromise<Generated, { model: ModelRecord }>(async ({ input, signal }) => {
      const reply = validateSchema(GenerateReplySchema, await requestJson(nc, subjects.profiler.generate, { model: input.model.name }, options.generateTimeoutMs), 'generate reply') as GenerateReply;
      // Cancelled (or stopped) meanwhile: the rollback has begun, so write nothing it would miss.
      if (signal.aborted) throw new InfaasError(ErrorCode.Internal, 'registration cancelled during generation');
      for (const v of reply.variants) await stores.variants.put(v.id, encodeJson(v));
      const skipped = reply.skipped ?? [];
      await kvModify<ModelRecord>(stores.models, keys.model(input.model.name), (m) => ({
        ...m, status: 'profiling', variants: reply.variants.map((v) => v.id), ...(skipped.length > 0 ? { skipped } : {}), updatedAt: now(),
      }));
      return { variants: reply.variants, skipped };
    }),
    awaitProfiles: fromPromise<ProfilingSummary, { model: ModelRecord; variants: VariantRecord[] }>(({ input, signal }) =>
      awaitProfiles(deps, input.model, input.variants, signal)),
    complete: fromPromise<ModelRecord, { model: ModelRecord }>(async ({ input }) => {
      const done = await kvModify<ModelRecord>(stores.models, keys.model(input.model.name), (m) => ({ ...m, status: 'registered', updatedAt: now() }));
      if (!done) throw new InfaasError(ErrorCode.ModelNotFound, `model ${input.model.name} vanished during registration`);
      return done;
    }),
    rollback: fromPromise<void, { name: string }>(async ({ input }) => {
      const removed = await removeModel(stores, input.name);
      deps.log.info({ model: input.name, ...removed }, 'rolled back failed registration');
    }),
  };
}

export async function modelRecord(stores: Stores, name: string): Promise<ModelRecord | undefined> {
  return (await kvGet<ModelRecord>(stores.models, keys.model(name)))?.value;
}
