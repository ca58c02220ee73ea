// Validation sets: MessagePack {samples: [{inputs: {name: Tensor}, label?}], charset?} (format 2), one
// sample per entry with its batch axis of size 1, or the legacy batched {inputs, labels}.
import type { DType, Tensor, TensorSpec } from '../schemas/tensor.js';
import type { Metric, ProfileShape } from '../schemas/registry.js';
import { isValid } from '../schemas/validate.js';
import { Tensor as TensorSchema } from '../schemas/tensor.js';
import { arrayToTensor, elementCount, packMsgpack, tensorToArray, unpackMsgpack, type TypedArray } from './bus/codec.js';
import { ErrorCode, InfaasError } from '../schemas/errors.js';
import { batchAxisOf } from './onnx/batch-axes.js';

/** An integer class (top1/top5), one class per output row (a sample whose output has several rows), or a string (ctc). */
export type Label = number | number[] | string;

export interface SampleTensor { dtype: DType; shape: number[]; values: TypedArray }

export interface ValidationSample {
  /** Every model input, decoded; its batch axis (where it has one) has size 1. */
  inputs: Record<string, SampleTensor>;
  label?: Label;
}

export interface ValidationSet {
  /** How many samples. */
  samples: number;
  items: ValidationSample[];
  /** What every sample's label is: class indices, a string, or none. */
  labelKind: 'class' | 'text' | 'none';
  /** ctc: output class k (k != blank) is this character list's entry (k < blank ? k : k - 1). */
  charset?: string[];
  /** The distinct sample sizes of the inputs with dynamic dimensions besides the batch axis, first seen first (empty when none). */
  shapes: ProfileShape[];
}

/** The format-2 document, as encodeValidationSamples writes it. */
export interface ValidationSetDoc {
  samples: { inputs: Record<string, Tensor>; label?: Label }[];
  charset?: string[];
}

function invalid(message: string): InfaasError {
  return new InfaasError(ErrorCode.ValidationSetInvalid, `validation set: ${message}`);
}

const fmt = (s: readonly (number | null)[]) => `[${s.map((d) => d ?? '?').join(',')}]`;

/** The legacy batched form: every input's first dimension is the sample. */
export function encodeValidationSet(inputs: Record<string, Tensor>, labels: Tensor): Uint8Array {
  return packMsgpack({ inputs, labels });
}

/** Format 2: one entry per sample (tensors with a batch axis of size 1), optional labels, and the charset ctc needs. */
export function encodeValidationSamples(samples: ValidationSetDoc['samples'], charset?: string[]): Uint8Array {
  return packMsgpack({ samples, ...(charset ? { charset } : {}) } satisfies ValidationSetDoc);
}


/**
 * Decodes and checks a validation set against the model's inputs and outputs and, when given, the
 * metric (without one, only the structure: a caller picks a default metric from `labelKind` and
 * checks again with it). Anything that does not fit is VALIDATION_SET_INVALID saying why.
 */
export function parseValidationSet(bytes: Uint8Array, inputs: TensorSpec[], outputs: TensorSpec[], metric?: Metric): ValidationSet {
  let doc: unknown;
  try { doc = unpackMsgpack(bytes); } catch (err) { throw invalid(`not MessagePack (${(err as Error).message})`); }
  if (typeof doc !== 'object' || doc === null) throw invalid('expected an object {samples: [...]} (or the legacy {inputs, labels})');
  const d = doc as { samples?: unknown; charset?: unknown };
  const parsed = d.samples !== undefined ? samplesOf(d.samples, inputs) : legacySamples(doc as { inputs?: unknown; labels?: unknown }, inputs);
  const set: ValidationSet = { ...parsed, samples: parsed.items.length, shapes: distinctShapes(parsed.items, inputs) };
  if (d.charset !== undefined) set.charset = charsetOf(d.charset);
  if (metric) checkMetric(set, outputs, metric);
  return set;
}

function samplesOf(raw: unknown, specs: TensorSpec[]): Pick<ValidationSet, 'items' | 'labelKind'> {
  if (!Array.isArray(raw)) throw invalid('"samples" must be a list of {inputs, label?}');
  if (raw.length < 1) throw invalid('it has no samples');
  const items: ValidationSample[] = [];
  let labelKind: ValidationSet['labelKind'] | undefined;
  for (const [i, s] of raw.entries()) {
    if (typeof s !== 'object' || s === null) throw invalid(`sample ${i} must be an object {inputs, label?}`);
    const { inputs: ins, label, ...rest } = s as { inputs?: unknown; label?: unknown };
    if (Object.keys(rest).length > 0) throw invalid(`sample ${i} has unknown fields ${Object.keys(rest).join(', ')}`);
    const kind = label === undefined || label === null ? 'none' : typeof label === 'string' ? 'text' : 'class';
    if (kind === 'class' && !isClassLabel(label)) throw invalid(`sample ${i}: a label is a whole number >= 0, a list of them, or a string; got ${JSON.stringify(label).slice(0, 60)}`);
    if (labelKind !== undefined && kind !== labelKind) throw invalid(`sample ${i} has ${describeKind(kind)} but sample 0 has ${describeKind(labelKind)}: label every sample alike`);
    labelKind = kind;
    items.push({ inputs: sampleInputs(ins, specs, `sample ${i}`), ...(kind !== 'none' ? { label: label as Label } : {}) });
  }
  return { items, labelKind: labelKind ?? 'none' };
}

const describeKind = (k: ValidationSet['labelKind']) => (k === 'none' ? 'no label' : k === 'text' ? 'a string label' : 'an integer label');

function isClassLabel(v: unknown): v is number | number[] {
  const ok = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  return ok(v) || (Array.isArray(v) && v.length > 0 && v.every(ok));
}

function sampleInputs(ins: unknown, specs: TensorSpec[], where: string): Record<string, SampleTensor> {
  if (typeof ins !== 'object' || ins === null) throw invalid(`${where}: "inputs" must map each model input name to a tensor`);
  const out: Record<string, SampleTensor> = {};
  for (const spec of specs) {
    const t = (ins as Record<string, unknown>)[spec.name];
    if (!isValid(TensorSchema, t)) throw invalid(`${where}: input "${spec.name}" is missing or not a tensor {dtype, shape, data}`);
    if (t.dtype !== spec.dtype) throw invalid(`${where}: input "${spec.name}" is ${t.dtype}, the model takes ${spec.dtype}`);
    const axis = batchAxisOf(spec);
    const want = spec.shape.map((dim, i) => (i === axis ? 1 : dim));
    if (t.shape.length !== want.length || want.some((dim, i) => dim !== null && dim !== t.shape[i])) {
      throw invalid(`${where}: input "${spec.name}" has shape ${fmt(t.shape)}; expected ${fmt(want)}${axis === null ? '' : ` (one sample: batch axis ${axis} of size 1)`}`);
    }
    try { out[spec.name] = { dtype: t.dtype, shape: [...t.shape], values: tensorToArray(t, `${where}: input "${spec.name}"`) }; } catch (err) { throw invalid((err as Error).message); }
  }
  const extra = Object.keys(ins).filter((k) => !specs.some((s) => s.name === k));
  if (extra.length > 0) throw invalid(`${where}: ${extra.map((k) => `"${k}"`).join(', ')} ${extra.length > 1 ? 'are not model inputs' : 'is not a model input'}`);
  return out;
}

/** The legacy form {inputs: {name: [N, ...]}, labels: [N] integers}, split into samples along axis 0. */
function legacySamples(doc: { inputs?: unknown; labels?: unknown }, specs: TensorSpec[]): Pick<ValidationSet, 'items' | 'labelKind'> {
  const { inputs: ins, labels } = doc;
  if (!isValid(TensorSchema, labels)) throw invalid('expected {samples: [...]}, or the legacy form whose "labels" is a tensor {dtype, shape, data}');
  if (!['int32', 'int64', 'uint8', 'int8'].includes(labels.dtype) || labels.shape.length !== 1) {
    throw invalid(`"labels" must be a 1-D integer tensor, got ${labels.dtype} ${fmt(labels.shape)}`);
  }
  const n = labels.shape[0];
  if (n < 1) throw invalid('it has no samples');
  const labelValues = Array.from(tensorToArray(labels, 'labels') as ArrayLike<number | bigint>, Number);
  const bad = labelValues.findIndex((v) => v < 0);
  if (bad >= 0) throw invalid(`label ${labelValues[bad]} at sample ${bad} is negative`);
  if (typeof ins !== 'object' || ins === null) throw invalid('"inputs" must map each model input name to a tensor');
  const columns: Record<string, { t: Tensor; values: TypedArray }> = {};
  for (const spec of specs) {
    const t = (ins as Record<string, unknown>)[spec.name];
    if (!isValid(TensorSchema, t)) throw invalid(`input "${spec.name}" is missing or not a tensor`);
    if (t.dtype !== spec.dtype) throw invalid(`input "${spec.name}" is ${t.dtype}, the model takes ${spec.dtype}`);
    const ok = t.shape.length === spec.shape.length && t.shape[0] === n && spec.shape.every((dim, i) => i === 0 || dim === null || dim === t.shape[i]);
    if (!ok) throw invalid(`input "${spec.name}" has shape ${fmt(t.shape)}; expected ${fmt([n, ...spec.shape.slice(1)])}`);
    try { columns[spec.name] = { t, values: tensorToArray(t, `input "${spec.name}"`) }; } catch (err) { throw invalid((err as Error).message); }
  }
  const extra = Object.keys(ins).filter((k) => !specs.some((s) => s.name === k));
  if (extra.length > 0) throw invalid(`inputs ${extra.join(', ')} are not model inputs`);
  const items = labelValues.map((label, i): ValidationSample => {
    const sampleIns: Record<string, SampleTensor> = {};
    for (const [name, { t, values }] of Object.entries(columns)) {
      const per = elementCount(t.shape.slice(1));
      sampleIns[name] = { dtype: t.dtype, shape: [1, ...t.shape.slice(1)], values: values.subarray(i * per, (i + 1) * per) as TypedArray };
    }
    return { inputs: sampleIns, label };
  });
  return { items, labelKind: 'class' };
}

function charsetOf(raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length === 0) throw invalid('"charset" must be a non-empty list of characters');
  const bad = raw.findIndex((c) => typeof c !== 'string' || [...c].length !== 1);
  if (bad >= 0) throw invalid(`charset entry ${bad} (${JSON.stringify(raw[bad]).slice(0, 20)}) is not one character`);
  return raw as string[];
}

function distinctShapes(items: ValidationSample[], specs: TensorSpec[]): ProfileShape[] {
  const dynamic = specs.filter((s) => s.shape.some((dim, i) => dim === null && i !== batchAxisOf(s)));
  if (dynamic.length === 0) return [];
  const seen = new Map<string, ProfileShape>();
  for (const it of items) {
    const shape = Object.fromEntries(dynamic.map((s) => [s.name, it.inputs[s.name].shape]));
    const key = JSON.stringify(shape);
    if (!seen.has(key)) seen.set(key, shape);
  }
  return [...seen.values()];
}

/** The output a metric reads: its `output`, else the first. */
export function metricOutput(outputs: TensorSpec[], metric?: Pick<Metric, 'output'>): TensorSpec {
  const out = metric?.output === undefined ? outputs[0] : outputs.find((o) => o.name === metric.output);
  if (!out) throw invalid(`the metric reads output "${metric?.output}", which the model does not have (it has: ${outputs.map((o) => o.name).join(', ')})`);
  return out;
}

function checkMetric(set: ValidationSet, outputs: TensorSpec[], metric: Metric): void {
  const out = metricOutput(outputs, metric);
  const last = out.shape.length > 0 ? out.shape[out.shape.length - 1] : 1;
  const classes = typeof last === 'number' ? last : undefined;
  if (metric.kind === 'top1' || metric.kind === 'top5') {
    if (set.labelKind === 'text') throw invalid(`string labels are for metric ctc; ${metric.kind} needs an integer class per sample`);
    if (set.labelKind === 'none') throw invalid(`its samples have no labels; ${metric.kind} needs an integer class per sample (metric fidelity compares variants with the registered model instead)`);
    if (metric.kind === 'top5' && classes !== undefined && classes < 5) throw invalid(`top5 needs at least 5 classes; output "${out.name}" has ${classes}`);
    if (classes !== undefined && classes > 1) {
      for (const [i, it] of set.items.entries()) {
        const badLabel = ([] as number[]).concat(it.label as number | number[]).find((v) => v >= classes);
        if (badLabel !== undefined) throw invalid(`label ${badLabel} at sample ${i} is outside 0..${classes - 1} (output "${out.name}" has ${classes} classes)`);
      }
    }
  } else if (metric.kind === 'ctc') {
    if (set.labelKind !== 'text') throw invalid(`metric ctc needs a string label per sample; its samples have ${describeKind(set.labelKind)}s`);
    if (!set.charset) throw invalid('metric ctc needs the "charset" that maps output classes to characters');
    if (out.shape.length < 2) throw invalid(`metric ctc reads a [batch, time, classes] output; "${out.name}" is ${fmt(out.shape)}`);
    const blank = metric.blank ?? 0;
    if (classes !== undefined && classes !== set.charset.length + 1) {
      throw invalid(`output "${out.name}" has ${classes} classes, but a charset of ${set.charset.length} characters and the blank make ${set.charset.length + 1}`
        + (classes === set.charset.length + 2 ? " (PaddleOCR's recogniser adds a space after its key file's characters: add \" \" as the last entry)" : ''));
    }
    if (classes !== undefined && blank >= classes) throw invalid(`blank class ${blank} is outside 0..${classes - 1}`);
    const chars = new Set(set.charset);
    for (const [i, it] of set.items.entries()) {
      const missing = [...(it.label as string)].find((c) => !chars.has(c));
      if (missing !== undefined) throw invalid(`label of sample ${i} has ${JSON.stringify(missing)}, which is not in the charset`);
    }
  } else if (metric.agreement === 'argmax' && classes === 1) {
    throw invalid(`fidelity by argmax needs more than one class on the last axis; output "${out.name}" has 1 (choose iou or cosine)`);
  }
}

/** Single-sample feeds (batch axis of size 1), at most `limit` of them, in the set's order. */
export function validationFeeds(set: ValidationSet, limit = set.samples): Array<Record<string, Tensor>> {
  return set.items.slice(0, Math.max(0, limit)).map((it) =>
    Object.fromEntries(Object.entries(it.inputs).map(([name, t]) => [name, arrayToTensor(t.dtype, t.shape, t.values)])));
}
