// Pure: a query's input tensors checked against the model's declared inputs, queries concatenated
// into one batch along dim 0 (the batch dimension of every input), and outputs split back per query.
import type { Tensor, TensorSpec } from '../../schemas/tensor.js';
import { elementCount, tensorToArray, type TypedArray } from '../../runtime/bus/codec.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import type { Feed } from '../../runtime/onnx/threaded-session.js';

export type { Feed };

/** One query's inputs as fresh typed arrays that nobody else holds, and its row count (dim 0). */
export interface CheckedInputs {
  rows: number;
  feeds: Record<string, Feed>;
}

const fmt = (shape: readonly (number | null)[]) => `[${shape.map((d) => d ?? '?').join(',')}]`;

function invalid(message: string, details?: Record<string, unknown>): InfaasError {
  return new InfaasError(ErrorCode.InvalidInput, message, details);
}

/** Validates a query against the model's inputs; every problem is INVALID_INPUT with its own message. */
export function checkInputs(inputs: Record<string, Tensor>, spec: TensorSpec[], maxBatch: number): CheckedInputs {
  if (spec.length === 0) throw new InfaasError(ErrorCode.Internal, 'the model declares no inputs');
  const expected = spec.map((s) => s.name);
  const takes = `the model takes ${expected.join(', ')}`;
  for (const name of Object.keys(inputs)) {
    if (!expected.includes(name)) throw invalid(`unknown input ${name}; ${takes}`, { input: name, expected });
  }
  const missing = expected.filter((n) => !Object.hasOwn(inputs, n));
  if (missing.length > 0) throw invalid(`missing input ${missing.join(', ')}; ${takes}`, { missing, expected });

  let rows: number | undefined;
  let rowsFrom = '';
  const feeds: Record<string, Feed> = {};
  for (const s of spec) {
    const t = inputs[s.name];
    checkShape(s, t, maxBatch);
    if (rows !== undefined && t.shape[0] !== rows) {
      throw invalid(`inputs disagree on the number of rows (dim 0): ${rowsFrom} has ${rows}, ${s.name} has ${t.shape[0]}`,
        { rows: { [rowsFrom]: rows, [s.name]: t.shape[0] } });
    }
    rows = t.shape[0];
    rowsFrom = s.name;
    feeds[s.name] = { dtype: s.dtype, dims: [...t.shape], data: toArray(t, s.name) };
  }
  return { rows: rows!, feeds };
}

function checkShape(s: TensorSpec, t: Tensor, maxBatch: number): void {
  const name = s.name;
  if (t.dtype !== s.dtype) throw invalid(`input ${name} is ${t.dtype}, the model takes ${s.dtype}`, { input: name, dtype: t.dtype, expected: s.dtype });
  if (t.shape.length !== s.shape.length) {
    throw invalid(`input ${name} has ${t.shape.length} dimensions ${fmt(t.shape)}, the model takes ${s.shape.length} ${fmt(s.shape)}`,
      { input: name, shape: t.shape, expected: s.shape });
  }
  s.shape.forEach((want, i) => {
    if (want !== null && t.shape[i] !== want) {
      throw invalid(`input ${name} dim ${i} is ${t.shape[i]}, the model takes ${want}`, { input: name, dim: i, size: t.shape[i], expected: want });
    }
  });
  const rows = t.shape[0];
  if (rows === 0) throw invalid(`input ${name} has 0 rows (dim 0); a query needs at least one`, { input: name });
  if (rows > maxBatch) {
    throw invalid(`input ${name} has ${rows} rows, more than this variant's max batch of ${maxBatch}`, { input: name, rows, maxBatch });
  }
}

/** A fresh typed array of the tensor's data; a size that does not match the shape is INVALID_INPUT. */
function toArray(t: Tensor, name: string): TypedArray {
  try {
    return tensorToArray(t, `input ${name}`);
  } catch (err) {
    if (err instanceof InfaasError && err.code === ErrorCode.BadRequest) throw invalid(err.message, { input: name, shape: t.shape });
    throw err;
  }
}

/**
 * Concatenates queries along dim 0: one allocation per input. A single query is passed through
 * uncopied. Queries checked against one spec always concatenate, unless the model has a dynamic
 * dimension besides the batch and they differ in it: that is INVALID_INPUT (batch them apart).
 */
export function concatBatch(parts: CheckedInputs[]): { rows: number[]; feeds: Record<string, Feed> } {
  if (parts.length === 0) throw new InfaasError(ErrorCode.Internal, 'concatBatch needs at least one query');
  const rows = parts.map((p) => p.rows);
  if (parts.length === 1) return { rows, feeds: parts[0].feeds };
  const total = rows.reduce((a, b) => a + b, 0);
  const feeds: Record<string, Feed> = {};
  for (const [name, first] of Object.entries(parts[0].feeds)) {
    const inner = first.dims.slice(1);
    const per = elementCount(inner);
    // A Node Buffer is a Uint8Array whose constructor is not the one to call.
    const Ctor = (first.data instanceof Uint8Array ? Uint8Array : first.data.constructor) as new (n: number) => TypedArray;
    const data = new Ctor(total * per);
    let offset = 0;
    for (const p of parts) {
      const f = p.feeds[name];
      if (!f || f.dtype !== first.dtype || f.dims.length !== first.dims.length || f.dims.some((d, i) => i > 0 && d !== first.dims[i])) {
        throw invalid(`cannot batch input ${name}: shapes ${fmt(first.dims)} and ${f ? fmt(f.dims) : 'none'} differ beyond dim 0`);
      }
      (data as Float32Array).set(f.data as Float32Array, offset);
      offset += f.data.length;
    }
    feeds[name] = { dtype: first.dtype, dims: [total, ...inner], data };
  }
  return { rows, feeds };
}

/**
 * Splits each output along dim 0 back to the queries, as wire tensors of little-endian bytes
 * (typed arrays are little-endian on every platform ORT ships for). Each part's data is a view
 * into the output's buffer, not a copy: the buffer came from the session thread and nothing else
 * holds or writes it. An output whose dim 0 is not the total of the rows (a per-batch value, or a
 * scalar) is not split: every query gets the whole of it, the same bytes.
 */
export function splitOutputs(outputs: Record<string, Feed>, rows: number[]): Record<string, Tensor>[] {
  const total = rows.reduce((a, b) => a + b, 0);
  const parts: Record<string, Tensor>[] = rows.map(() => ({}));
  for (const [name, out] of Object.entries(outputs)) {
    const { buffer, byteOffset, byteLength } = out.data;
    if (out.dims.length === 0 || out.dims[0] !== total) {
      for (const p of parts) p[name] = { dtype: out.dtype, shape: [...out.dims], data: new Uint8Array(buffer, byteOffset, byteLength) };
      continue;
    }
    const inner = out.dims.slice(1);
    const rowBytes = elementCount(inner) * out.data.BYTES_PER_ELEMENT;
    let row = 0;
    rows.forEach((r, i) => {
      parts[i][name] = { dtype: out.dtype, shape: [r, ...inner], data: new Uint8Array(buffer, byteOffset + row * rowBytes, r * rowBytes) };
      row += r;
    });
  }
  return parts;
}

/** `rows` rows of zeros for every declared input (other dynamic dims as 1): warm-up runs. */
export function zeroInputs(inputs: TensorSpec[], rows: number): Record<string, Feed> {
  const feeds: Record<string, Feed> = {};
  for (const spec of inputs) {
    const dims = spec.shape.map((d, i) => (i === 0 ? rows : d ?? 1));
    const n = dims.reduce((a, b) => a * b, 1);
    const data = spec.dtype === 'int64' ? new BigInt64Array(n) : new ({ float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array } as const)[spec.dtype](n);
    feeds[spec.name] = { dtype: spec.dtype, dims, data };
  }
  return feeds;
}
