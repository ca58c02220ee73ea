// Variant generation: the registered file as fp32, a dynamic int8 rewrite and a static int8 (QDQ)
// rewrite calibrated on the validation set, each made in a worker thread and checked to load in
// ONNX Runtime. Every precision the grid asks for and that is not made is reported with its reason.
import type { ModelRecord, Precision, SkippedVariant, VariantRecord } from '../../schemas/registry.js';
import { objects } from '../../subjects/index.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { tensorToArray } from '../../runtime/bus/codec.js';
import { objectBytes, putObject } from '../../runtime/bus/store.js';
import { quantizeInThread, type QuantizeJob, type QuantizeOutcome } from '../../runtime/onnx/quantize-offload.js';
import type { CalibrationFeed } from '../../runtime/onnx/quantize-static.js';
import { parseValidationSet, validationFeeds } from '../../runtime/validation-set.js';
import type { ProfilerDeps } from './effects.js';
import { planVariants, STATIC_INT8_OPT_LEVEL, type VariantFile } from './plan.js';

export interface GeneratedVariants {
  variants: VariantRecord[];
  /** Precisions asked for and not made, with the reason. */
  skipped: SkippedVariant[];
}

/** Calibration samples for static int8: ORT's default calibration size, and a cap on the bytes held. */
export const CALIBRATION_SAMPLES = 32;
const CALIBRATION_MAX_BYTES = 64 * 1024 * 1024;

const now = () => Date.now();

/**
 * Single-sample calibration feeds from a model's validation set (at most CALIBRATION_SAMPLES, and
 * CALIBRATION_MAX_BYTES in all): the validation-set module's feeds, decoded to typed arrays.
 */
export function calibrationFeeds(model: Pick<ModelRecord, 'inputs' | 'outputs' | 'metric'>, setBytes: Uint8Array): CalibrationFeed[] {
  const set = parseValidationSet(setBytes, model.inputs, model.outputs, model.metric);
  const feeds: CalibrationFeed[] = [];
  let bytes = 0;
  for (const feed of validationFeeds(set, CALIBRATION_SAMPLES)) {
    const f: CalibrationFeed = {};
    for (const [name, t] of Object.entries(feed)) {
      const data = tensorToArray(t, `input "${name}"`);
      f[name] = { dtype: t.dtype, dims: t.shape, data };
      bytes += data.byteLength;
    }
    if (feeds.length > 0 && bytes > CALIBRATION_MAX_BYTES) break;
    feeds.push(f);
  }
  return feeds;
}

/** Why a quantiser's result is not a variant (undefined: it is one). */
function unusable(kind: Precision, outcome: QuantizeOutcome): string | undefined {
  const { report } = outcome;
  if (!outcome.bytes) {
    const reasons = [...new Set(report.skippedNodes.map((s) => s.reason))];
    return report.skippedNodes.length === 0
      ? 'no weights to quantise: the graph has no Conv, MatMul or Gemm'
      : `no weights to quantise: none of its ${report.skippedNodes.length} Conv/MatMul/Gemm nodes qualifies (${reasons.join('; ')})`;
  }
  if (outcome.loadError) return `the ${kind} graph fails to load in ONNX Runtime ${outcome.loadError}`;
  return undefined;
}

async function quantizedFile(deps: ProfilerDeps, model: ModelRecord, bytes: Uint8Array, kind: Precision, job: QuantizeJob): Promise<VariantFile | SkippedVariant> {
  let outcome: QuantizeOutcome;
  try {
    outcome = await quantizeInThread(bytes, job);
  } catch (err) {
    return { kind, reason: (err as Error).message };
  }
  const reason = unusable(kind, outcome);
  if (reason) return { kind, reason };
  const object = objects.variant(model.name, kind);
  const what = kind === 'int8' ? 'int8 dynamic-quantised' : `int8 static-quantised (QDQ, ${job.kind === 'int8-static' ? job.calibration.length : 0} calibration samples)`;
  await putObject(deps.stores.repository, object, outcome.bytes!, `${model.name}: ${what} variant`);
  deps.log.info({ model: model.name, precision: kind, quantizedNodes: outcome.report.quantizedNodes, skippedNodes: outcome.report.skippedNodes.length, passes: outcome.report.passes }, 'quantised variant made');
  return { object, sizeBytes: outcome.bytes!.byteLength };
}

async function staticInt8(deps: ProfilerDeps, model: ModelRecord, bytes: Uint8Array): Promise<VariantFile | SkippedVariant> {
  const kind = 'int8-static';
  if (!deps.generator.optLevels.includes(STATIC_INT8_OPT_LEVEL)) {
    return { kind, reason: `made only at optimisation level '${STATIC_INT8_OPT_LEVEL}' (where ONNX Runtime fuses Q/DQ into integer kernels); this grid has ${deps.generator.optLevels.join(', ')}` };
  }
  if (!model.validation) return { kind, reason: 'no validation set to calibrate on' };
  let calibration: CalibrationFeed[];
  try {
    calibration = calibrationFeeds(model, await objectBytes(deps.stores.repository, model.validation.object));
  } catch (err) {
    return { kind, reason: `the validation set cannot be read for calibration: ${(err as Error).message}` };
  }
  return quantizedFile(deps, model, bytes, kind, { kind, calibration, checkLevels: [STATIC_INT8_OPT_LEVEL] });
}

/** Builds the variant files of a model (fp32 as registered, int8 dynamic, int8 static) and plans its variants. */
export async function generateVariants(deps: ProfilerDeps, model: ModelRecord): Promise<GeneratedVariants> {
  const bytes = await objectBytes(deps.stores.repository, model.object);
  const wanted = deps.generator.precisions;
  const files: Partial<Record<Precision, VariantFile>> = {};
  const skipped: SkippedVariant[] = [];
  const keep = (kind: Precision, r: VariantFile | SkippedVariant) => {
    if ('reason' in r) skipped.push(r);
    else files[kind] = r;
  };
  if (wanted.includes('fp32')) {
    await putObject(deps.stores.repository, objects.variant(model.name, 'fp32'), bytes, `${model.name}: fp32 variant`);
    files.fp32 = { object: objects.variant(model.name, 'fp32'), sizeBytes: bytes.byteLength };
  }
  if (wanted.includes('int8')) keep('int8', await quantizedFile(deps, model, bytes, 'int8', { kind: 'int8', checkLevels: deps.generator.optLevels }));
  if (wanted.includes('int8-static')) keep('int8-static', await staticInt8(deps, model, bytes));
  if (skipped.length > 0) deps.log.info({ model: model.name, skipped }, 'variant kinds not made');
  const variants = planVariants(model, deps.generator, files, now());
  if (variants.length === 0) {
    const why = skipped.map((s) => `${s.kind}: ${s.reason}`).join('; ');
    throw new InfaasError(ErrorCode.GenerationFailed, `no variants could be generated for ${model.name}${why ? ` (${why})` : ''}`);
  }
  return { variants, skipped };
}
