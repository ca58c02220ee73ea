// Measures one session configuration: load time, latency per input size and batch size, peak
// memory, accuracy. Runs inside a child process (see profile-process.ts) so that timing and memory
// are its own.
import type { Fidelity, LatencyPoint, Metric, ProfileShape, SizedLatency } from '../../schemas/registry.js';
import type { TensorSpec } from '../../schemas/tensor.js';
import { createSession, type ort, type SessionConfig } from '../../runtime/onnx/onnx-session.js';
import type { ValidationSet } from '../../runtime/validation-set.js';
import { buildModel, decodeModel, encodeModel, initializerBytes, node, onnxElemType, valueInfo } from '../../runtime/onnx/onnx-graph.js';
import { batchFeeds, NoisePool, profileSizes, samplesOfSize, type ProfileSize } from './profile-feeds.js';
import { measureAccuracy } from './profile-accuracy.js';

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
  /**
   * A batch whose single run takes longer than this (measured, or predicted from the previous
   * batch) ends that size's curve: it and larger batches are left out (default 1500 ms).
   */
  maxRunMs?: number;
  /** Measuring one point stops after this long once it has 3 runs, below minRuns if need be (default 3000 ms). */
  maxPointMs?: number;
  /** Batches whose inputs exceed this many bytes are left out, batch 1 excepted (default 64 MiB). */
  maxBatchInputBytes?: number;
}

export const defaultMeasureOptions: MeasureOptions = { minRuns: 20, minTimeMs: 150, maxRuns: 400, warmupRuns: 5, warmupMs: 50 };
const DEFAULT_MAX_RUN_MS = 1500;
const DEFAULT_MAX_POINT_MS = 3000;
const DEFAULT_MAX_BATCH_INPUT_BYTES = 64 * 2 ** 20;

export interface MeasureJob {
  modelBytes: Uint8Array;
  /** The registered fp32 file, for fidelity (absent: no fidelity figures; metric fidelity fails). */
  referenceBytes?: Uint8Array;
  session: SessionConfig;
  batchSizes: number[];
  /** False: the model runs unbatched, so only batch 1 is profiled. */
  batched?: boolean;
  /** Batched on each one's batchAxis (absent 0, null none). */
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Sizes to profile at (absent or empty: one size, the fixed shapes with dynamic dims at 1; `sizes` is then absent). */
  shapes?: ProfileShape[];
  /** Absent: top1. */
  metric?: Metric;
  declaredAccuracy?: number;
  /** Called after the memory measurement, so that what parsing frees cannot be reused unseen. */
  loadValidation?: () => ValidationSet;
  options: MeasureOptions;
}

export interface MeasureResult {
  loadMs: number;
  /** The curve at the largest size. */
  latency: LatencyPoint[];
  /** One curve per profiled size, ascending elements; present when the job gave shapes. */
  sizes?: SizedLatency[];
  peakMemoryBytes: number;
  accuracy?: number;
  accuracySource?: 'measured' | 'fidelity';
  metric?: string;
  top5?: number;
  fidelity?: Fidelity;
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

const fmtShape = (s: ProfileSize) => Object.entries(s.shape).map(([k, v]) => `${k} ${v.join('x')}`).join(', ') || 'fixed size';

/** One point of a curve, or undefined when its first run (batch > 1) already exceeds maxRunMs. */
async function measurePoint(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, batch: number, o: MeasureOptions): Promise<LatencyPoint | undefined> {
  const maxRunMs = o.maxRunMs ?? DEFAULT_MAX_RUN_MS;
  const maxPointMs = o.maxPointMs ?? DEFAULT_MAX_POINT_MS;
  const warmStart = performance.now();
  await session.run(feeds);
  if (batch > 1 && performance.now() - warmStart > maxRunMs) return undefined;
  for (let w = 1; (w < o.warmupRuns || performance.now() - warmStart < o.warmupMs) && performance.now() - warmStart < maxPointMs / 4; w++) await session.run(feeds);
  const times: number[] = [];
  const start = performance.now();
  const enough = () => times.length >= Math.min(3, o.minRuns) && performance.now() - start >= maxPointMs;
  while (times.length < o.maxRuns && (times.length < o.minRuns || performance.now() - start < o.minTimeMs) && !enough()) {
    const s = performance.now();
    await session.run(feeds);
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  const meanMs = times.reduce((a, b) => a + b, 0) / times.length;
  return { batch, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), meanMs, runs: times.length };
}

/**
 * The latency curve at one size. Growth stops at the first batch whose inputs exceed
 * maxBatchInputBytes or whose run takes longer than maxRunMs (predicted linearly from the previous
 * point, or seen on its first run): a 640x640 detector at batch 32 is ~160 MB of input and seconds
 * per run. Those batches are left out of the curve, and selection treats batches beyond a curve as
 * infeasible, so a variant is never promised a batch that was too slow or too big to measure.
 */
async function measureCurve(
  session: ort.InferenceSession, job: MeasureJob, size: ProfileSize, batches: number[], samples: ReturnType<typeof samplesOfSize>, noise: NoisePool, note: (s: string) => void,
): Promise<LatencyPoint[]> {
  const o = job.options;
  const maxRunMs = o.maxRunMs ?? DEFAULT_MAX_RUN_MS;
  const maxBytes = o.maxBatchInputBytes ?? DEFAULT_MAX_BATCH_INPUT_BYTES;
  const curve: LatencyPoint[] = [];
  for (const batch of batches) {
    const prev = curve[curve.length - 1];
    if (batch > 1 && batch * size.bytes > maxBytes) {
      note(`batch ${batch}+ left out: ${((batch * size.bytes) / 2 ** 20).toFixed(1)} MiB of input exceeds ${(maxBytes / 2 ** 20).toFixed(0)} MiB`);
      break;
    }
    if (prev && (prev.p50Ms * batch) / prev.batch > maxRunMs) {
      note(`batch ${batch}+ left out: a run would take ~${((prev.p50Ms * batch) / prev.batch).toFixed(0)} ms, over ${maxRunMs} ms`);
      break;
    }
    const point = await measurePoint(session, batchFeeds(job.inputs, size, batch, samples, noise), batch, o);
    if (!point) {
      note(`batch ${batch}+ left out: one run took over ${maxRunMs} ms`);
      break;
    }
    curve.push(point);
    note(`batch ${batch}: p50 ${point.p50Ms.toFixed(3)} ms`);
  }
  return curve;
}

export async function measure(job: MeasureJob, progress: (fraction: number, note: string) => void): Promise<MeasureResult> {
  // The first session in a process also initialises ONNX Runtime itself (tens of ms, a few MB); a
  // worker pays that once, not per variant, so a trivial graph takes that cost before we measure.
  // It stays open until the end: memory it freed could otherwise be reused by the measured session.
  const warmup = await createSession(identityModelBytes(), job.session);
  const sizes = profileSizes(job.inputs, job.shapes);
  const batches = job.batched === false ? [1] : [...new Set(job.batchSizes)].sort((a, b) => a - b);
  const largest = sizes[sizes.length - 1];
  const o = job.options;
  const maxBytes = o.maxBatchInputBytes ?? DEFAULT_MAX_BATCH_INPUT_BYTES;
  const memoryBatches = batches.filter((b) => b === 1 || b * largest.bytes <= maxBytes);
  const noise = new NoisePool();
  batchFeeds(job.inputs, largest, Math.max(...memoryBatches), [], noise); // noise allocated before the baseline
  // Memory: resident-set growth over the value just before the session exists, sampled after load
  // and after runs at the largest size (batch 1, then the largest batch the curve will likely
  // keep: the arena's peak), before the validation set is even read, so its tensors are not
  // counted. (The process's maxRSS high-water mark would count start-up garbage.)
  const baseline = process.memoryUsage().rss;
  let peakRss = baseline;
  const sampleRss = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };
  const t0 = performance.now();
  const session = await createSession(job.modelBytes, job.session);
  const loadMs = performance.now() - t0;
  sampleRss();
  const r0 = performance.now();
  await session.run(batchFeeds(job.inputs, largest, 1, [], noise));
  const oneRunMs = performance.now() - r0;
  sampleRss();
  const memoryBatch = Math.max(...memoryBatches.filter((b) => b === 1 || oneRunMs * b <= (o.maxRunMs ?? DEFAULT_MAX_RUN_MS)));
  if (memoryBatch > 1) {
    await session.run(batchFeeds(job.inputs, largest, memoryBatch, [], noise));
    sampleRss();
  }
  const validation = job.loadValidation?.();
  const steps = sizes.length + (validation ? 1 : 0);
  const sized: SizedLatency[] = [];
  for (const [i, size] of sizes.entries()) {
    const label = sizes.length > 1 || job.shapes?.length ? `${fmtShape(size)}: ` : '';
    const samples = validation ? samplesOfSize(size, validation.items) : [];
    const curve = await measureCurve(session, job, size, batches, samples, noise, (note) => progress((i + 0.5) / steps, label + note));
    sized.push({ shape: size.shape, elements: size.elements, latency: curve });
    progress((i + 1) / steps, `${label}done (${curve.length} batch sizes, ${samples.length > 0 ? 'validation inputs' : 'seeded noise'})`);
  }
  const accuracy = validation
    ? await measureAccuracy(session, {
      modelBytes: job.modelBytes, referenceBytes: job.referenceBytes, session: job.session, outputs: job.outputs,
      metric: job.metric, declaredAccuracy: job.declaredAccuracy, maxSamples: o.maxValidationSamples,
    }, validation, (note) => progress(sizes.length / steps, note))
    : undefined;
  if (accuracy) progress(1, `accuracy ${(accuracy.accuracy * 100).toFixed(2)}% (${accuracy.metric}) on ${accuracy.validationSamples} samples`);
  // RSS cannot see allocations that reuse pages the process had already freed, which hides a
  // small model's session; it must hold its weights at least, so those bound the figure below.
  const peakMemoryBytes = Math.max(peakRss - baseline, initializerBytes(decodeModel(job.modelBytes)));
  await session.release();
  await warmup.release();
  return {
    loadMs, latency: sized[sized.length - 1].latency, peakMemoryBytes,
    ...(job.shapes?.length ? { sizes: sized } : {}),
    ...(accuracy ?? {}),
  };
}
