// Validation sets: a MessagePack object {inputs: {name: Tensor}, labels: Tensor}, first dim = samples.
import type { Tensor, TensorSpec } from '../schemas/tensor.js';
import { isValid } from '../schemas/validate.js';
import { Tensor as TensorSchema } from '../schemas/tensor.js';
import { arrayToTensor, elementCount, packMsgpack, tensorToArray, unpackMsgpack, type TypedArray } from './bus/codec.js';
import { ErrorCode, InfaasError } from '../schemas/errors.js';

export interface ValidationSet {
  inputs: Record<string, { spec: Tensor; values: TypedArray }>;
  labels: Int32Array;
  samples: number;
}

function invalid(message: string): InfaasError {
  return new InfaasError(ErrorCode.ValidationSetInvalid, `validation set: ${message}`);
}

export function encodeValidationSet(inputs: Record<string, Tensor>, labels: Tensor): Uint8Array {
  return packMsgpack({ inputs, labels });
}

/** Decodes and checks a validation set against the model's declared inputs and outputs. */
export function parseValidationSet(bytes: Uint8Array, inputs: TensorSpec[], outputs: TensorSpec[]): ValidationSet {
  let doc: unknown;
  try { doc = unpackMsgpack(bytes); } catch (err) { throw invalid(`not MessagePack (${(err as Error).message})`); }
  if (typeof doc !== 'object' || doc === null) throw invalid('expected an object {inputs, labels}');
  const { inputs: ins, labels } = doc as { inputs?: unknown; labels?: unknown };
  if (!isValid(TensorSchema, labels)) throw invalid('"labels" must be a tensor {dtype, shape, data}');
  if (!['int32', 'int64', 'uint8', 'int8'].includes(labels.dtype) || labels.shape.length !== 1) {
    throw invalid(`"labels" must be a 1-D integer tensor, got ${labels.dtype} [${labels.shape.join(',')}]`);
  }
  const samples = labels.shape[0];
  if (samples < 1) throw invalid('it has no samples');
  const labelValues = Int32Array.from(tensorToArray(labels, 'labels') as ArrayLike<number | bigint>, (v) => Number(v));
  const classes = outputs[0]?.shape[outputs[0].shape.length - 1];
  if (typeof classes === 'number' && classes > 1) {
    const bad = labelValues.findIndex((v) => v < 0 || v >= classes);
    if (bad >= 0) throw invalid(`label ${labelValues[bad]} at sample ${bad} is outside 0..${classes - 1}`);
  }
  if (typeof ins !== 'object' || ins === null) throw invalid('"inputs" must map each model input name to a tensor');
  const out: ValidationSet['inputs'] = {};
  for (const spec of inputs) {
    const t = (ins as Record<string, unknown>)[spec.name];
    if (!isValid(TensorSchema, t)) throw invalid(`input "${spec.name}" is missing or not a tensor`);
    if (t.dtype !== spec.dtype) throw invalid(`input "${spec.name}" is ${t.dtype}, the model takes ${spec.dtype}`);
    const shapeOk = t.shape.length === spec.shape.length && t.shape[0] === samples
      && spec.shape.every((d, i) => i === 0 || d === null || d === t.shape[i]);
    if (!shapeOk) {
      throw invalid(`input "${spec.name}" has shape [${t.shape.join(',')}]; expected [${samples},${spec.shape.slice(1).map((d) => d ?? '?').join(',')}]`);
    }
    try { out[spec.name] = { spec: t, values: tensorToArray(t, `input "${spec.name}"`) }; } catch (err) { throw invalid((err as Error).message); }
  }
  const extra = Object.keys(ins).filter((k) => !inputs.some((s) => s.name === k));
  if (extra.length > 0) throw invalid(`inputs ${extra.join(', ')} are not model inputs`);
  return { inputs: out, labels: labelValues, samples };
}

/** Rows [from, to) of every input, as tensors ready for a session run. */
export function sliceInputs(set: ValidationSet, from: number, to: number): Record<string, Tensor> {
  const r: Record<string, Tensor> = {};
  for (const [name, { spec, values }] of Object.entries(set.inputs)) {
    const per = elementCount(spec.shape.slice(1));
    r[name] = arrayToTensor(spec.dtype, [to - from, ...spec.shape.slice(1)], values.subarray(from * per, to * per) as TypedArray);
  }
  return r;
}
