// Pure planning for the variant generator and profiler: which variants exist, and how they group
// into profiling runs (variants that differ only in maxBatch share one measured latency curve).
import type { ModelRecord, OptLevel, Precision, VariantRecord } from '../../schemas/registry.js';
import { batchAxisOf } from '../../runtime/onnx/batch-axes.js';

export interface GeneratorOptions {
  precisions: Precision[];
  optLevels: OptLevel[];
  maxBatches: number[];
  threads: number[];
  providers: string[];
}

/**
 * Static int8 (QDQ) variants exist only at this level: below it ORT runs the Q/DQ pairs as float
 * arithmetic around float kernels (slower than fp32, never worth choosing), and only there does it
 * fuse them into QLinearConv/QLinearMatMul. One level instead of two also keeps the third precision
 * to +25 % profiling runs (2 of 10 groups) rather than +50 %.
 */
export const STATIC_INT8_OPT_LEVEL: OptLevel = 'all';

/**
 * The default grid: fp32 and dynamic int8 x 2 graph-optimisation levels x 3 batch caps x 2 thread
 * counts, plus static int8 at level 'all' only (made when the model has a validation set to
 * calibrate on) = 24 + 6 variants per model on CPU. 'disabled' vs 'all' brackets what ORT's optimiser buys.
 */
export const defaultGeneratorOptions: GeneratorOptions = Object.freeze({
  precisions: ['fp32', 'int8', 'int8-static'],
  optLevels: ['disabled', 'all'],
  maxBatches: [1, 8, 32],
  threads: [1, 2],
  providers: ['cpu'],
}) as GeneratorOptions;

export interface VariantFile { object: string; sizeBytes: number }

export function variantSuffix(p: { precision: Precision; optLevel: OptLevel; maxBatch: number; intraOpThreads: number; executionProvider: string }): string {
  return `${p.precision}-${p.optLevel}-b${p.maxBatch}-t${p.intraOpThreads}-${p.executionProvider}`;
}

/**
 * Batch caps a model allows: all of them when its batch axes are dynamic; only the fixed size when
 * a tensor's batch axis has one; only 1 when the model is served unbatched (batched false) or no
 * input has a batch axis (each query is then one run).
 */
export function allowedBatches(model: Pick<ModelRecord, 'inputs'> & Partial<Pick<ModelRecord, 'outputs' | 'batched'>>, wanted: number[]): number[] {
  if (model.batched === false) return [1];
  const batchedInputs = model.inputs.filter((s) => batchAxisOf(s) !== null);
  if (batchedInputs.length === 0) return [1];
  const fixed = [...batchedInputs, ...(model.outputs ?? [])].map((s) => { const a = batchAxisOf(s); return a === null ? null : s.shape[a] ?? null; })
    .find((d) => d !== null);
  if (fixed !== undefined && fixed !== null) return [fixed];
  return [...new Set(wanted)].filter((b) => b >= 1).sort((a, b) => a - b);
}

export function planVariants(model: Pick<ModelRecord, 'name' | 'task' | 'inputs'> & Partial<Pick<ModelRecord, 'outputs' | 'batched'>>, options: GeneratorOptions, files: Partial<Record<Precision, VariantFile>>, createdAt: number): VariantRecord[] {
  const out: VariantRecord[] = [];
  for (const precision of options.precisions) {
    const file = files[precision];
    if (!file) continue;
    for (const optLevel of options.optLevels) {
      if (precision === 'int8-static' && optLevel !== STATIC_INT8_OPT_LEVEL) continue;
      for (const maxBatch of allowedBatches(model, options.maxBatches)) {
        for (const intraOpThreads of options.threads) {
          for (const executionProvider of options.providers) {
            const spec = { precision, optLevel, maxBatch, intraOpThreads, executionProvider };
            out.push({
              id: `${model.name}.${variantSuffix(spec)}`, model: model.name, task: model.task, ...spec,
              object: file.object, sizeBytes: file.sizeBytes, createdAt,
            });
          }
        }
      }
    }
  }
  return out;
}

export interface ProfileGroup {
  /** model + everything but maxBatch: one ONNX Runtime session configuration. */
  key: string;
  model: string;
  variants: VariantRecord[];
  maxBatch: number;
}

export function sessionKey(v: VariantRecord): string {
  return `${v.model}/${v.precision}-${v.optLevel}-t${v.intraOpThreads}-${v.executionProvider}`;
}

export function groupForProfiling(variants: VariantRecord[]): ProfileGroup[] {
  const groups = new Map<string, ProfileGroup>();
  for (const v of variants) {
    const key = sessionKey(v);
    const g = groups.get(key) ?? { key, model: v.model, variants: [], maxBatch: 0 };
    g.variants.push(v);
    g.maxBatch = Math.max(g.maxBatch, v.maxBatch);
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => a.key.localeCompare(b.key));
}
