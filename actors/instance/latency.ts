// The latency model: a variant's profiled p50 as a function of rows (the batch) and input size (a
// query's input elements per sample). Selection, admission, expiry, batching and the simulator ask it.
import type { TensorSpec } from '../../schemas/tensor.js';

/** Profiled p50 per batch size. */
export type LatencyPoints = readonly { batch: number; p50Ms: number }[];

/** A latency curve at one profiled input size: `elements` per sample, every input, batch axis excluded. */
export interface SizedPoints {
  elements: number;
  latency: LatencyPoints;
}

/**
 * What the model predicts from: the curve at the largest profiled size (`latency`, what code that
 * ignores sizes uses, so it errs slow) and, for models profiled at several sizes, each size's curve.
 */
export interface LatencyProfile {
  latency: LatencyPoints;
  sizes?: readonly SizedPoints[];
}

/** Linear interpolation over profiled (batch, ms) points; beyond the last point, scale per query. */
export function latencyCurve(points: LatencyPoints): (batch: number) => number {
  const ps = [...points].sort((a, b) => a.batch - b.batch);
  return (b) => {
    if (ps.length === 0) return 0;
    if (b <= ps[0].batch) return ps[0].p50Ms;
    for (let i = 1; i < ps.length; i++) {
      if (b <= ps[i].batch) {
        const [lo, hi] = [ps[i - 1], ps[i]];
        return lo.p50Ms + ((hi.p50Ms - lo.p50Ms) * (b - lo.batch)) / (hi.batch - lo.batch);
      }
    }
    const last = ps[ps.length - 1];
    return (last.p50Ms * b) / last.batch;
  };
}

/**
 * Where a query of `elements` per sample falls among profiled sizes (ascending elements, at least
 * one): its latency is (1 - w) x size `lo`'s + w x size `hi`'s, times `scale`. Between two sizes,
 * linear in elements; at or below the smallest, the smallest's (a smaller input is not assumed
 * faster than anything measured); above the largest, the largest's scaled by elements, an
 * extrapolation (work per sample grows about linearly with input size for convolutional and
 * sequence models, but nothing above the largest size was measured).
 */
export interface SizeBlend { lo: number; hi: number; w: number; scale: number }

export function sizeBlend(sizes: readonly { elements: number }[], elements: number): SizeBlend {
  if (!(elements > sizes[0].elements)) return { lo: 0, hi: 0, w: 0, scale: 1 };
  for (let i = 1; i < sizes.length; i++) {
    const hi = sizes[i].elements;
    if (elements <= hi) {
      const lo = sizes[i - 1].elements;
      return { lo: i - 1, hi: i, w: hi > lo ? (elements - lo) / (hi - lo) : 1, scale: 1 };
    }
  }
  const last = sizes.length - 1;
  const top = sizes[last].elements;
  return { lo: last, hi: last, w: 0, scale: top > 0 ? elements / top : 1 };
}

const byElements = (sizes: readonly SizedPoints[]) => sizes.filter((s) => s.latency.length > 0).sort((a, b) => a.elements - b.elements);

/**
 * p50 by rows for queries of `elements` per sample: each profiled size's curve interpolated in rows
 * (latencyCurve), then blended across sizes (sizeBlend). Without sizes, or without `elements`, the
 * profile's own curve, as before sizes existed.
 */
export function sizedLatencyCurve(profile: LatencyProfile, elements?: number): (batch: number) => number {
  const sizes = profile.sizes && elements !== undefined ? byElements(profile.sizes) : [];
  if (sizes.length === 0) return latencyCurve(profile.latency);
  const { lo, hi, w, scale } = sizeBlend(sizes, elements!);
  const a = latencyCurve(sizes[lo].latency);
  if (lo === hi) return scale === 1 ? a : (b) => a(b) * scale;
  const c = latencyCurve(sizes[hi].latency);
  return (b) => (1 - w) * a(b) + w * c(b);
}

/** The p50 of the smallest profiled batch that holds `batch`, or undefined when none does. */
function stepAt(points: LatencyPoints, batch: number): number | undefined {
  for (let i = 0; i < points.length; i++) if (points[i].batch >= batch) return points[i].p50Ms;
  return undefined;
}

/**
 * The selection policy's reading: the p50 of the smallest profiled batch that holds `batch` (no
 * interpolation in rows: undefined past the last profiled batch), blended across sizes as sizeBlend
 * says (inlined: the policy asks it for every candidate profile when its memo misses, and this path
 * allocates nothing). Sizes ascending by elements, curves ascending by batch.
 */
export function stepLatencyMs(profile: LatencyProfile, batch: number, elements?: number): number | undefined {
  const sizes = profile.sizes;
  if (elements === undefined || sizes === undefined || sizes.length === 0) return stepAt(profile.latency, batch);
  const n = sizes.length;
  let i = 0;
  while (i < n && elements > sizes[i].elements) i++;
  // At or below the smallest size, or at a profiled size (queries mostly come at the profiled ones): one curve.
  if (i === 0 || (i < n && elements === sizes[i].elements)) return stepAt(sizes[i].latency, batch);
  if (i === n) {
    const top = sizes[n - 1];
    const a = stepAt(top.latency, batch);
    return a === undefined || !(top.elements > 0) ? a : a * (elements / top.elements);
  }
  const lo = sizes[i - 1], hi = sizes[i];
  const a = stepAt(lo.latency, batch);
  const c = a === undefined ? undefined : stepAt(hi.latency, batch);
  if (c === undefined) return undefined;
  const w = (elements - lo.elements) / (hi.elements - lo.elements);
  return (1 - w) * a! + w * c;
}

/** The model's prediction for one call of `batch` rows of `elements` per sample (see sizedLatencyCurve). */
export function predictLatencyMs(profile: LatencyProfile, batch: number, elements?: number): number {
  return sizedLatencyCurve(profile, elements)(batch);
}

/**
 * sizedLatencyCurve per input size, remembered (an instance asks per query; queries come in a few
 * sizes, and the memo starts over past 64). No profile: a curve of zeros; no sizes: one curve.
 */
export function latencyModel(profile?: LatencyProfile): (elements?: number) => (batch: number) => number {
  const reference = latencyCurve(profile?.latency ?? []);
  if (!profile?.sizes?.some((s) => s.latency.length > 0)) return () => reference;
  const memo = new Map<number, (batch: number) => number>();
  return (elements) => {
    if (elements === undefined) return reference;
    let curve = memo.get(elements);
    if (!curve) {
      if (memo.size >= 64) memo.clear();
      memo.set(elements, curve = sizedLatencyCurve(profile, elements));
    }
    return curve;
  };
}

/** A tensor on the wire (its shape) or a session feed (its dims): only the shape is read. */
export type Shaped = { readonly shape: readonly number[] } | { readonly dims: readonly number[] };

/**
 * A query's input elements per sample, the measure the profile's sizes are keyed by: each input's
 * dimensions multiplied except its batch axis (the spec's `batchAxis`: absent 0, null none, so a
 * shared input counts whole), summed over inputs. Excluding the batch axis rather than dividing the
 * total by the rows keeps an input with no batch axis from being split across rows. An input with
 * no spec counts as batched on axis 0.
 */
export function sampleElements(inputs: Readonly<Record<string, Shaped>>, specs: readonly Pick<TensorSpec, 'name' | 'batchAxis'>[]): number {
  let total = 0;
  for (const name in inputs) {
    const t = inputs[name];
    const shape = 'shape' in t ? t.shape : t.dims;
    let axis: number | null | undefined = 0;
    for (const s of specs) if (s.name === name) { axis = s.batchAxis === undefined ? 0 : s.batchAxis; break; }
    let n = 1;
    for (let i = 0; i < shape.length; i++) if (i !== axis) n *= shape[i];
    total += n;
  }
  return total;
}

/** Input elements rounded to 7 significant bits (within 0.8 %), never below 1: a mean that keeps curve memos small. */
export function roundElements(e: number): number {
  if (!(e > 0)) return 1;
  const step = 2 ** Math.max(0, Math.floor(Math.log2(e)) - 6);
  return Math.max(1, Math.round(e / step) * step);
}
