// Measures one session configuration: load time, latency per batch size, peak memory, accuracy.
// Runs inside a child process (see profile-process.ts) so that timing and memory are its own.
import type { LatencyPoint } from '../../schemas/registry.js';
import type { Tensor, TensorSpec } from '../../schemas/tensor.js';
import { elementCount, tensorToArray } from '../../runtime/bus/codec.js';
import { createSession, ort, type SessionConfig } from '../../runtime/onnx/onnx-session.js';
import { sliceInputs, type ValidationSet } from '../../runtime/validation-set.js';
import { buildModel, decodeModel, encodeModel, initializerBytes, node, onnxElemType, valueInfo } from '../../runtime/onnx/onnx-graph.js';

function identityModelBytes(): Uint8Array {
  return encodeModel(buildModel({
    name: 'warm-up', nodes: [node('Identity', ['x'], ['y'])], initializers: [],
    inputs: [valueInfo('x', onnxElemType.float32, [1])], outputs: [valueInfo('y', onnxElemType.float32, [1])],
  }));
}

export interface MeasureOptions {
  /** Runs per batch size: at least minRuns and at least minTimeMs of measuring, at most maxRuns. */
  minRuns: number;
  minTimeMs: number;
  maxRuns: number;
  warmupRuns: number;
  /** Warm-up also lasts at least this long: five runs of a 20 us model do not warm the JIT or the CPU clock. */
  warmupMs: number;
  /** Cap on validation samples used for accuracy (all when undefined). */
  maxValidationSamples?: number;
}

export const defaultMeasureOptions: MeasureOptions = { minRuns: 20, minTimeMs: 150, maxRuns: 400, warmupRuns: 5, warmupMs: 50 };

export interface MeasureJob {
  modelBytes: Uint8Array;
  session: SessionConfig;
  batchSizes: number[];
  inputs: TensorSpec[];
  /** Called after the memory measurement, so that what parsing frees cannot be reused unseen. */
  loadValidation?: () => ValidationSet;
  options: MeasureOptions;
}

export interface MeasureResult {
  loadMs: number;
  latency: LatencyPoint[];
  peakMemoryBytes: number;
  accuracy?: number;
  validationSamples?: number;
}

export function batchSizesUpTo(maxBatch: number): number[] {
  const sizes: number[] = [];
  for (let b = 1; b < maxBatch; b *= 2) sizes.push(b);
  sizes.push(maxBatch);
  return sizes;
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function toOrt(t: Tensor): ort.Tensor {
  const values = tensorToArray(t);
  return new ort.Tensor(t.dtype, values as Float32Array, t.shape);
}

/** Inputs for a batch: validation rows (repeated if needed) when we have them, else seeded noise. */
function batchInputs(job: MeasureJob, validation: ValidationSet | undefined, batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  if (validation) {
    const n = validation.samples;
    const rows = sliceInputs(validation, 0, Math.min(batch, n));
    for (const [name, t] of Object.entries(rows)) {
      const per = elementCount(t.shape.slice(1));
      const src = tensorToArray(t) as Float32Array;
      const Ctor = src.constructor as Float32ArrayConstructor;
      const dst = new Ctor(batch * per);
      for (let r = 0; r < batch; r++) dst.set(src.subarray((r % t.shape[0]) * per, ((r % t.shape[0]) + 1) * per), r * per);
      feeds[name] = new ort.Tensor(t.dtype, dst, [batch, ...t.shape.slice(1)]);
    }
    return feeds;
  }
  let seed = 12345;
  for (const spec of job.inputs) {
    const shape = spec.shape.map((d, i) => (i === 0 ? batch : d ?? 1));
    const n = elementCount(shape);
    const values = spec.dtype === 'float32' ? Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647)) : new Int32Array(n);
    feeds[spec.name] = toOrt({ dtype: spec.dtype, shape, data: new Uint8Array(values.buffer) });
  }
  return feeds;
}

function argmaxAccuracy(out: ort.Tensor, labels: Int32Array, offset: number): number {
  const dims = out.dims;
  const classes = dims.length > 1 ? dims[dims.length - 1] : 1;
  const data = out.data as Float32Array;
  let correct = 0;
  const rows = dims[0];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    if (classes > 1) {
      for (let k = 1; k < classes; k++) if (data[r * classes + k] > data[r * classes + best]) best = k;
    } else best = Math.round(Number(data[r]));
    if (best === labels[offset + r]) correct++;
  }
  return correct;
}

export async function measure(job: MeasureJob, progress: (fraction: number, note: string) => void): Promise<MeasureResult> {
  // The first session in a process also initialises ONNX Runtime itself (tens of ms, a few MB); a
  // worker pays that once, not per variant, so a trivial graph takes that cost before we measure.
  // It stays open until the end: memory it freed could otherwise be reused by the measured session.
  const warmup = await createSession(identityModelBytes(), job.session);
  const maxBatch = Math.max(...job.batchSizes);
  const memoryFeeds = batchInputs(job, undefined, maxBatch);
  // Memory: resident-set growth over the value just before the session exists, sampled after load
  // and after a run at the largest batch (the arena's peak), before the validation set is even
  // read, so its tensors are not counted. (The process's maxRSS high-water mark would count
  // start-up garbage.)
  const baseline = process.memoryUsage().rss;
  let peakRss = baseline;
  const sampleRss = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };
  const t0 = performance.now();
  const session = await createSession(job.modelBytes, job.session);
  const loadMs = performance.now() - t0;
  sampleRss();
  await session.run(memoryFeeds);
  sampleRss();
  const validation = job.loadValidation?.();
  const steps = job.batchSizes.length + (validation ? 1 : 0);
  const latency: LatencyPoint[] = [];
  for (const [i, batch] of job.batchSizes.entries()) {
    const feeds = batchInputs(job, validation, batch);
    const warmStart = performance.now();
    for (let w = 0; w < job.options.warmupRuns || performance.now() - warmStart < job.options.warmupMs; w++) await session.run(feeds);
    const times: number[] = [];
    const start = performance.now();
    while (times.length < job.options.maxRuns && (times.length < job.options.minRuns || performance.now() - start < job.options.minTimeMs)) {
      const s = performance.now();
      await session.run(feeds);
      times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    const meanMs = times.reduce((a, b) => a + b, 0) / times.length;
    latency.push({ batch, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), meanMs, runs: times.length });
    progress((i + 1) / steps, `batch ${batch}: p50 ${percentile(times, 50).toFixed(3)} ms`);
  }
  let accuracy: number | undefined;
  let validationSamples: number | undefined;
  if (validation) {
    const v = validation;
    const n = Math.min(v.samples, job.options.maxValidationSamples ?? v.samples);
    const chunk = Math.max(...job.batchSizes);
    let correct = 0;
    for (let from = 0; from < n; from += chunk) {
      const to = Math.min(n, from + chunk);
      const feeds = Object.fromEntries(Object.entries(sliceInputs(v, from, to)).map(([k, t]) => [k, toOrt(t)]));
      const out = await session.run(feeds);
      correct += argmaxAccuracy(out[session.outputNames[0]], v.labels, from);
    }
    accuracy = correct / n;
    validationSamples = n;
    progress(1, `accuracy ${(accuracy * 100).toFixed(2)}% on ${n} samples`);
  }
  // RSS cannot see allocations that reuse pages the process had already freed, which hides a
  // small model's session; it must hold its weights at least, so those bound the figure below.
  const peakMemoryBytes = Math.max(peakRss - baseline, initializerBytes(decodeModel(job.modelBytes)));
  await session.release();
  await warmup.release();
  return { loadMs, latency, peakMemoryBytes, accuracy, validationSamples };
}
