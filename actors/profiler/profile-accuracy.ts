// A variant's accuracy on the validation set, by the model's metric: top1/top5/ctc against labels,
// or fidelity to the reference (the registered fp32 file) run on the same inputs.
import type { Fidelity, Metric } from '../../schemas/registry.js';
import type { TensorSpec } from '../../schemas/tensor.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { createSession, ort, type SessionConfig } from '../../runtime/onnx/onnx-session.js';
import { metricOutput, type ValidationSet } from '../../runtime/validation-set.js';
import { addFidelity, agreementFigure, asNumbers, classHits, ctcGreedyDecode, fidelityOf, fidelitySums } from '../../runtime/metrics.js';

export interface AccuracyJob {
  modelBytes: Uint8Array;
  /** The registered fp32 file: the reference for fidelity. */
  referenceBytes?: Uint8Array;
  session: SessionConfig;
  outputs: TensorSpec[];
  /** Absent: top1. */
  metric?: Metric;
  declaredAccuracy?: number;
  maxSamples?: number;
}

export interface AccuracyResult {
  accuracy: number;
  accuracySource: 'measured' | 'fidelity';
  /** What `accuracy` is: top1, top5, ctc, fidelity:argmax, fidelity:iou, fidelity:cosine. */
  metric: string;
  top5?: number;
  fidelity?: Fidelity;
  validationSamples: number;
}

type Agreement = NonNullable<Metric['agreement']>;

/**
 * The agreement a fidelity metric uses when it names none: argmax when the output's last axis is a
 * fixed class axis (more than one class, rank at most 3: [batch, classes] or [batch, time, classes]),
 * else IoU at 0.5 (a dense map such as a detector's [batch, 1, H, W], whose last axis is a width).
 */
export function defaultAgreement(out: TensorSpec): Agreement {
  const last = out.shape[out.shape.length - 1];
  return typeof last === 'number' && last > 1 && out.shape.length <= 3 ? 'argmax' : 'iou';
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function invalid(message: string): InfaasError {
  return new InfaasError(ErrorCode.ValidationSetInvalid, `validation set: ${message}`);
}

export async function measureAccuracy(
  session: ort.InferenceSession, job: AccuracyJob, set: ValidationSet, progress: (note: string) => void,
): Promise<AccuracyResult> {
  const metric: Metric = job.metric ?? { kind: 'top1' };
  const outSpec = metricOutput(job.outputs, metric);
  const out = outSpec.name;
  const n = Math.min(set.samples, job.maxSamples ?? set.samples);
  const agreement = metric.agreement ?? defaultAgreement(outSpec);
  if (metric.kind === 'fidelity' && !job.referenceBytes) throw new InfaasError(ErrorCode.ProfilingFailed, 'metric fidelity needs the registered model file to compare with');
  // Labelled metrics get fidelity figures too when they cost one extra run per sample and say
  // something: the variant's file differs from the reference (an int8 variant, not the fp32 copy).
  const compare = metric.kind === 'fidelity' || (job.referenceBytes !== undefined && !sameBytes(job.referenceBytes, job.modelBytes));
  const reference = compare && job.referenceBytes
    ? await createSession(job.referenceBytes, { graphOptimizationLevel: 'basic', intraOpThreads: job.session.intraOpThreads, executionProvider: 'cpu' })
    : undefined;
  const useArgmax = metric.kind === 'fidelity' ? agreement === 'argmax' || defaultAgreement(outSpec) === 'argmax' : true;
  const useIou = metric.kind === 'fidelity' && (agreement === 'iou' || !useArgmax);
  const sums = fidelitySums(useArgmax, useIou ? metric.threshold ?? 0.5 : undefined);
  let rows = 0;
  let top1 = 0;
  let top5 = 0;
  let fewClasses = false;
  let exact = 0;
  const score = (i: number, values: ArrayLike<number>, classes: number) => {
    const it = set.items[i];
    if (metric.kind === 'top1' || metric.kind === 'top5') {
      const labels = ([] as number[]).concat(it.label as number | number[]);
      let hits;
      try { hits = classHits(values, classes, labels); } catch (err) { throw invalid(`sample ${i}: ${(err as Error).message}`); }
      if (classes > 1 && labels.some((l) => l >= classes)) throw invalid(`sample ${i}: label outside the output's ${classes} classes`);
      rows += hits.rows;
      top1 += hits.top1;
      top5 += hits.top5;
      if (classes < 5) fewClasses = true;
    } else if (metric.kind === 'ctc') {
      if (classes !== set.charset!.length + 1) throw invalid(`output "${out}" has ${classes} classes; the charset and the blank make ${set.charset!.length + 1}`);
      if (ctcGreedyDecode(values, classes, set.charset!, metric.blank ?? 0) === it.label) exact++;
    }
  };
  // One sample per run, as a query served alone: dynamic int8 quantisation takes activation ranges
  // over the whole tensor, so in a batched run a sample's figure would depend on its neighbours.
  // (Batching bought little anyway: 2000 MNIST samples on cnn-wide, 6.5 s one by one, 7.6 s by 32.)
  const run = async (s: ort.InferenceSession, feeds: Record<string, ort.Tensor>) => {
    const o = (await s.run(feeds))[out];
    return { values: asNumbers(o.data as Float32Array | BigInt64Array), classes: o.dims.length > 0 ? o.dims[o.dims.length - 1] : 1 };
  };
  try {
    for (let i = 0; i < n; i++) {
      const feeds = Object.fromEntries(Object.entries(set.items[i].inputs).map(([name, t]) => [name, new ort.Tensor(t.dtype, t.values as Float32Array, t.shape)]));
      const { values, classes } = await run(session, feeds);
      score(i, values, classes);
      if (reference) addFidelity(sums, values, (await run(reference, feeds)).values, classes);
      if (n >= 20 && (i + 1) % Math.ceil(n / 4) === 0 && i + 1 < n) progress(`accuracy: ${i + 1}/${n} samples`);
    }
  } finally {
    await reference?.release();
  }
  const fidelity = reference ? fidelityOf(sums, n, out) : undefined;
  const base = { validationSamples: n, ...(fidelity ? { fidelity } : {}) };
  if (metric.kind === 'fidelity') {
    const figure = agreementFigure(fidelity!, agreement);
    if (figure === undefined) throw new InfaasError(ErrorCode.ProfilingFailed, `fidelity by ${agreement} is not defined for output "${out}" (its last axis has ${sums.rows === 0 ? 'one value' : 'no rows'})`);
    return { ...base, accuracy: (job.declaredAccuracy ?? 1) * figure, accuracySource: 'fidelity', metric: `fidelity:${agreement}` };
  }
  if (metric.kind === 'ctc') return { ...base, accuracy: exact / n, accuracySource: 'measured', metric: 'ctc' };
  if (metric.kind === 'top5' && fewClasses) throw invalid(`top5 needs at least 5 classes; output "${out}" has fewer`);
  const top5Figure = fewClasses ? undefined : top5 / rows;
  return { ...base, accuracy: metric.kind === 'top5' ? top5 / rows : top1 / rows, accuracySource: 'measured', metric: metric.kind, ...(top5Figure !== undefined ? { top5: top5Figure } : {}) };
}
