// Pure planning for the variant generator and profiler: which variants exist, and how they group
// into profiling runs (variants that differ only in maxBatch share one measured latency curve).
import type { ModelRecord, OptLevel, Precision, VariantRecord } from '../../schemas/registry.js';

export interface GeneratorOptions {
  precisions: Precision[];
  optLevels: OptLevel[];
  maxBatches: number[];
  threads: number[];
  providers: string[];
}

/**
 * The default grid: 2 precisions x 2 graph-optimisation levels x 3 batch caps x 2 thread counts
 * = 24 variants per model on CPU. 'disabled' vs 'all' brackets what ORT's optimiser buys.
 */
export const defaultGeneratorOptions: GeneratorOptions = Object.freeze({
  precisions: ['fp32', 'int8'],
  optLevels: ['disabled', 'all'],
  maxBatches: [1, 8, 32],
  threads: [1, 2],
  providers: ['cpu'],
}) as GeneratorOptions;

export interface VariantFile { object: string; sizeBytes: number }

export function variantSuffix(p: { precision: Precision; optLevel: OptLevel; maxBatch: number; intraOpThreads: number; executionProvider: string }): string {
  return `${p.precision}-${p.optLevel}-b${p.maxBatch}-t${p.intraOpThreads}-${p.executionProvider}`;
}

/** Batch caps a model allows: all of them when its batch dimension is dynamic, else its fixed size. */
export function allowedBatches(model: Pick<ModelRecord, 'inputs'>, wanted: number[]): number[] {
  const fixed = model.inputs.map((i) => i.shape[0]).find((d) => d !== null);
  if (fixed !== undefined && fixed !== null) return [fixed];
  return [...new Set(wanted)].filter((b) => b >= 1).sort((a, b) => a - b);
}

export function planVariants(model: Pick<ModelRecord, 'name' | 'task' | 'inputs'>, options: GeneratorOptions, files: Partial<Record<Precision, VariantFile>>, createdAt: string): VariantRecord[] {
  const out: VariantRecord[] = [];
  for (const precision of options.precisions) {
    const file = files[precision];
    if (!file) continue;
    for (const optLevel of options.optLevels) {
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
