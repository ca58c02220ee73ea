// Accuracy metrics on plain arrays: top-1/top-5 of a class axis, greedy CTC decoding, and the
// fidelity of a variant's output to the reference model's. Pure: no ONNX Runtime here.
import type { Fidelity } from '../schemas/registry.js';

/** Values of any numeric output as numbers (int64 outputs arrive as BigInt64Array). */
export function asNumbers(values: ArrayLike<number> | BigInt64Array): ArrayLike<number> {
  return values instanceof BigInt64Array ? Float64Array.from(values, Number) : values;
}

/** The `k` largest entries' indices of row `r`, best first (ties: the lower index first). */
function topK(values: ArrayLike<number>, offset: number, classes: number, k: number): number[] {
  const best: number[] = [];
  for (let c = 0; c < classes; c++) {
    const v = values[offset + c];
    let at = best.length;
    while (at > 0 && values[offset + best[at - 1]] < v) at--;
    if (at < k) { best.splice(at, 0, c); if (best.length > k) best.pop(); }
  }
  return best;
}

export interface ClassHits { rows: number; top1: number; top5: number }

/**
 * Top-1 and top-5 hits of each row of a [rows, classes] output against one label per row. A
 * single-value output (classes 1) is read as a class index, rounded; top-5 then equals top-1.
 */
export function classHits(values: ArrayLike<number>, classes: number, labels: readonly number[]): ClassHits {
  const rows = Math.floor(values.length / classes);
  if (rows !== labels.length) throw new RangeError(`the output has ${rows} rows of ${classes} classes but ${labels.length} labels were given`);
  let top1 = 0;
  let top5 = 0;
  for (let r = 0; r < rows; r++) {
    if (classes === 1) {
      const hit = Math.round(values[r]) === labels[r];
      top1 += hit ? 1 : 0;
      top5 += hit ? 1 : 0;
      continue;
    }
    const best = topK(values, r * classes, classes, Math.min(5, classes));
    if (best[0] === labels[r]) top1++;
    if (best.includes(labels[r])) top5++;
  }
  return { rows, top1, top5 };
}

/**
 * Greedy CTC decoding of a [time, classes] output: the argmax per step, repeats collapsed, blanks
 * dropped. Class k (k != blank) is charset[k < blank ? k : k - 1]: with blank 0 (PaddleOCR's
 * convention) class k is charset[k - 1].
 */
export function ctcGreedyDecode(values: ArrayLike<number>, classes: number, charset: readonly string[], blank = 0): string {
  const steps = Math.floor(values.length / classes);
  let text = '';
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    const k = topK(values, t * classes, classes, 1)[0];
    if (k !== prev && k !== blank) text += charset[k < blank ? k : k - 1] ?? '\uFFFD';
    prev = k;
  }
  return text;
}

/** Running sums of a variant's output against the reference's, over any number of samples. */
export interface FidelitySums {
  /** The last axis is a class axis: compare argmax per row. */
  argmax: boolean;
  /** Compare the maps thresholded here (IoU); undefined: no IoU. */
  threshold?: number;
  rows: number;
  rowsAgreeing: number;
  values: number;
  maxAbs: number;
  sumAbsDiff: number;
  sumAbsRef: number;
  dot: number;
  normVariant: number;
  normRef: number;
  intersection: number;
  union: number;
  /** Pairs where either value is NaN or infinite and they differ. */
  nonFinite: number;
}

export function fidelitySums(argmax: boolean, threshold?: number): FidelitySums {
  return { argmax, threshold, rows: 0, rowsAgreeing: 0, values: 0, maxAbs: 0, sumAbsDiff: 0, sumAbsRef: 0, dot: 0, normVariant: 0, normRef: 0, intersection: 0, union: 0, nonFinite: 0 };
}

/** Adds one sample's outputs (same shape; `classes` is the last axis) to the sums. */
export function addFidelity(s: FidelitySums, variant: ArrayLike<number>, reference: ArrayLike<number>, classes: number): void {
  if (variant.length !== reference.length) throw new RangeError(`the variant's output has ${variant.length} values, the reference's ${reference.length}`);
  const n = variant.length;
  for (let i = 0; i < n; i++) {
    const v = variant[i];
    const r = reference[i];
    const d = Math.abs(v - r);
    if (!Number.isFinite(d)) {
      if (!Object.is(v, r)) s.nonFinite++;
      continue;
    }
    if (d > s.maxAbs) s.maxAbs = d;
    s.sumAbsDiff += d;
    s.sumAbsRef += Math.abs(r);
    s.dot += v * r;
    s.normVariant += v * v;
    s.normRef += r * r;
    if (s.threshold !== undefined) {
      const a = v > s.threshold;
      const b = r > s.threshold;
      if (a && b) s.intersection++;
      if (a || b) s.union++;
    }
  }
  s.values += n;
  if (s.argmax && classes > 1) {
    for (let off = 0; off + classes <= n; off += classes) {
      s.rows++;
      if (topK(variant, off, classes, 1)[0] === topK(reference, off, classes, 1)[0]) s.rowsAgreeing++;
    }
  }
}

/**
 * The figures of the sums. relError is mean |variant - reference| over mean |reference| (1 when the
 * reference is all zeros and the variant is not); IoU of two empty maps is 1 (they agree that there
 * is nothing); non-finite differences make maxAbsError the largest finite number.
 */
export function fidelityOf(s: FidelitySums, samples: number, output: string): Fidelity {
  const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
  const denom = Math.sqrt(s.normVariant) * Math.sqrt(s.normRef);
  const cosine = denom > 0 ? Math.min(1, Math.max(-1, s.dot / denom)) : (s.normVariant === s.normRef ? 1 : 0);
  const relError = s.sumAbsRef > 0 ? s.sumAbsDiff / s.sumAbsRef : (s.sumAbsDiff > 0 ? 1 : 0);
  const f: Fidelity = {
    samples, output,
    maxAbsError: s.nonFinite > 0 ? Number.MAX_VALUE : s.maxAbs,
    relError: s.nonFinite > 0 ? Math.max(relError, 1) : relError,
    cosine: s.nonFinite > 0 ? Math.min(cosine, 0) : cosine,
  };
  if (s.argmax && s.rows > 0) f.argmaxAgreement = clamp01(s.rowsAgreeing / s.rows);
  if (s.threshold !== undefined) {
    f.iou = clamp01(s.union > 0 ? s.intersection / s.union : 1);
    f.threshold = s.threshold;
  }
  return f;
}

/** The figure an agreement names, in [0, 1] (a negative cosine counts as 0). */
export function agreementFigure(f: Fidelity, agreement: 'argmax' | 'iou' | 'cosine'): number | undefined {
  if (agreement === 'argmax') return f.argmaxAgreement;
  if (agreement === 'iou') return f.iou;
  return Math.max(0, f.cosine);
}
