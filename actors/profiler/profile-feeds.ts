// The inputs a profiling run feeds a session: the sizes to profile at, and a batch at one size built
// from validation samples of that size (repeated) or seeded noise, stacked on each input's batch axis.
import type { ProfileShape } from '../../schemas/registry.js';
import { BYTES_PER_ELEMENT, type DType, type TensorSpec } from '../../schemas/tensor.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { elementCount, type TypedArray } from '../../runtime/bus/codec.js';
import { ort } from '../../runtime/onnx/onnx-session.js';
import type { SampleTensor } from '../../runtime/validation-set.js';
import { batchAxisOf } from '../../runtime/onnx/batch-axes.js';

/** One size to profile at. */
export interface ProfileSize {
  /** As given (the inputs with dynamic sizes); {} for a model whose sizes are all fixed. */
  shape: ProfileShape;
  /** Every input's one-sample shape (batch axis 1; inputs without a batch axis whole). */
  sample: Record<string, number[]>;
  /** Input elements per sample, every input counted. */
  elements: number;
  /** Input bytes per sample. */
  bytes: number;
}

const fmt = (s: readonly (number | null)[]) => `[${s.map((d) => d ?? '?').join(',')}]`;

/**
 * The sizes to profile at, ascending by elements. Without `shapes`, one size: the declared shapes
 * with every dynamic dimension (the batch axis included) at 1, as profiles were before sizes existed.
 */
export function profileSizes(inputs: TensorSpec[], shapes: ProfileShape[] = []): ProfileSize[] {
  const list = shapes.length > 0 ? shapes : [{}];
  const sizes = list.map((shape): ProfileSize => {
    const unknown = Object.keys(shape).filter((name) => !inputs.some((s) => s.name === name));
    if (unknown.length > 0) throw new InfaasError(ErrorCode.ProfilingFailed, `profile shape names ${unknown.join(', ')}, not inputs of the model`);
    const sample: Record<string, number[]> = {};
    let elements = 0;
    let bytes = 0;
    for (const spec of inputs) {
      const axis = batchAxisOf(spec);
      const want = spec.shape.map((d, i) => (i === axis ? 1 : d));
      const given = shape[spec.name];
      if (given && (given.length !== want.length || want.some((d, i) => d !== null && d !== given[i]))) {
        throw new InfaasError(ErrorCode.ProfilingFailed, `profile shape ${fmt(given)} of input "${spec.name}" does not fit ${fmt(want)}`);
      }
      sample[spec.name] = given ? [...given] : want.map((d) => d ?? 1);
      const n = elementCount(sample[spec.name]);
      elements += n;
      bytes += n * BYTES_PER_ELEMENT[spec.dtype];
    }
    return { shape, sample, elements, bytes };
  });
  return sizes.sort((a, b) => a.elements - b.elements);
}

const ARRAYS = { float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array, int64: BigInt64Array } as const;

/**
 * Seeded noise, grown on demand and handed out as prefix views (any prefix of noise is noise of the
 * right dtype). Floats are uniform in [0, 1); integers are 0, a valid index or token id for any model.
 */
export class NoisePool {
  private pools = new Map<DType, TypedArray>();
  private seed = 12345;

  view(dtype: DType, count: number): TypedArray {
    let pool = this.pools.get(dtype);
    if (!pool || pool.length < count) {
      pool = new ARRAYS[dtype](count) as TypedArray;
      if (dtype === 'float32' || dtype === 'float64') {
        for (let i = 0; i < count; i++) pool[i] = (this.seed = (this.seed * 16807) % 2147483647) / 2147483647;
      }
      this.pools.set(dtype, pool);
    }
    return pool.subarray(0, count) as TypedArray;
  }
}

/** A sample's shape with its batch axis at `batch` (inputs without a batch axis unchanged). */
function batchedShape(spec: TensorSpec, sample: number[], batch: number): number[] {
  const axis = batchAxisOf(spec);
  return axis === null ? sample : sample.map((d, i) => (i === axis ? batch : d));
}

/**
 * `batch` copies of one size's sample stacked on each input's batch axis: the validation samples
 * given (cycled), or noise when there are none. Inputs without a batch axis take the first sample's.
 */
export function batchFeeds(inputs: TensorSpec[], size: ProfileSize, batch: number, samples: Record<string, SampleTensor>[], noise: NoisePool): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of inputs) {
    const one = size.sample[spec.name];
    const shape = batchedShape(spec, one, batch);
    const axis = batchAxisOf(spec);
    if (samples.length === 0) {
      feeds[spec.name] = new ort.Tensor(spec.dtype, noise.view(spec.dtype, elementCount(shape)) as Float32Array, shape);
    } else if (axis === null || batch === 1) {
      feeds[spec.name] = new ort.Tensor(spec.dtype, samples[0][spec.name].values as Float32Array, shape);
    } else {
      feeds[spec.name] = new ort.Tensor(spec.dtype, stack(samples.map((s) => s[spec.name].values), one, axis, batch) as Float32Array, shape);
    }
  }
  return feeds;
}

/** Stacks one-sample arrays of `shape` (size 1 on `axis`) into a batch along that axis, cycling the sources. */
export function stack(sources: TypedArray[], shape: number[], axis: number, batch: number): TypedArray {
  const outer = elementCount(shape.slice(0, axis));
  const inner = elementCount(shape.slice(axis + 1));
  const Ctor = sources[0].constructor as new (n: number) => TypedArray;
  const dst = new Ctor(outer * batch * inner);
  for (let o = 0; o < outer; o++) {
    for (let b = 0; b < batch; b++) {
      const src = sources[b % sources.length];
      (dst as Float32Array).set(src.subarray(o * inner, (o + 1) * inner) as Float32Array, (o * batch + b) * inner);
    }
  }
  return dst;
}

/** The validation samples whose every input has exactly this size's shape. */
export function samplesOfSize(size: ProfileSize, items: { inputs: Record<string, SampleTensor> }[]): Record<string, SampleTensor>[] {
  return items.map((it) => it.inputs).filter((ins) =>
    Object.entries(size.sample).every(([name, shape]) => ins[name] && ins[name].shape.length === shape.length && ins[name].shape.every((d, i) => d === shape[i])));
}

