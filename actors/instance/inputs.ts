// Pure: a query's input tensors checked against the model's declared inputs, queries concatenated
// into one batch along each input's own batch axis, and outputs split back per query along each
// output's batch axis. No query is ever given another query's rows, nor a value computed from them.
import type { Tensor, TensorSpec } from '../../schemas/tensor.js';
import { elementCount, tensorToArray, type TypedArray } from '../../runtime/bus/codec.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { batchAxisOf } from '../../runtime/onnx/batch-axes.js';
import type { Feed } from '../../runtime/onnx/threaded-session.js';
import { batchKey, sameFeed } from './batch-key.js';
import { sampleElements } from './latency.js';

export type { Feed };

/** One query's inputs as fresh typed arrays that nobody else holds, and its row count. */
export interface CheckedInputs {
  /** Rows on the inputs' batch axes; 1 when no input has a batch axis (the query is one unit). */
  rows: number;
  feeds: Record<string, Feed>;
  /** Each input's batch axis; null: none (shared by a batch only when every query's value is the same). */
  axes: Record<string, number | null>;
  /** Queries with different keys never share a run (batch-key.ts). */
  key: string;
  /** Input elements per sample, the measure profile sizes are keyed by (latency.ts, sampleElements). */
  elements: number;
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
  const axes: Record<string, number | null> = {};
  for (const s of spec) {
    const t = inputs[s.name];
    const axis = checkShape(s, t, maxBatch);
    axes[s.name] = axis;
    if (axis !== null) {
      const r = t.shape[axis];
      if (rows !== undefined && r !== rows) {
        throw invalid(`inputs disagree on the number of rows (their batch axes): ${rowsFrom} has ${rows}, ${s.name} has ${r} (dim ${axis})`,
          { rows: { [rowsFrom]: rows, [s.name]: r } });
      }
      rows = r;
      rowsFrom = s.name;
    }
    feeds[s.name] = { dtype: s.dtype, dims: [...t.shape], data: toArray(t, s.name) };
  }
  const checked = { rows: rows ?? 1, feeds, axes, key: '', elements: sampleElements(feeds, spec) };
  checked.key = batchKey(checked);
  return checked;
}

/** Checks dtype, rank, fixed sizes and the rows on the batch axis; returns the batch axis. */
function checkShape(s: TensorSpec, t: Tensor, maxBatch: number): number | null {
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
  const axis = batchAxisOf(s);
  if (axis === null) return null;
  if (axis >= s.shape.length) throw new InfaasError(ErrorCode.Internal, `input ${name} ${fmt(s.shape)} declares batch axis ${axis}, beyond its rank`);
  const rows = t.shape[axis];
  if (rows === 0) throw invalid(`input ${name} has 0 rows (dim ${axis}); a query needs at least one`, { input: name });
  if (rows > maxBatch) {
    throw invalid(`input ${name} has ${rows} rows, more than this variant's max batch of ${maxBatch}`, { input: name, rows, maxBatch });
  }
  return axis;
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

type ArrayCtor = new (n: number) => TypedArray;
// A Node Buffer is a Uint8Array whose constructor is not the one to call.
const ctorOf = (a: TypedArray) => (a instanceof Uint8Array ? Uint8Array : a.constructor) as ArrayCtor;

/**
 * Concatenates queries, each input along its own batch axis (axis 0: one copy per query; a later
 * axis: a strided copy, block by block). A single query is passed through uncopied. An input
 * without a batch axis is passed once, and only when every query's value is the same bytes.
 * Queries that differ in a size besides the batch axis, or in an axis-less value, are INVALID_INPUT:
 * the host only batches queries with the same key (batch-key.ts), so that means a caller's mistake.
 */
export function concatBatch(parts: CheckedInputs[]): { rows: number[]; feeds: Record<string, Feed> } {
  if (parts.length === 0) throw new InfaasError(ErrorCode.Internal, 'concatBatch needs at least one query');
  const rows = parts.map((p) => p.rows);
  if (parts.length === 1) return { rows, feeds: parts[0].feeds };
  const total = rows.reduce((a, b) => a + b, 0);
  const feeds: Record<string, Feed> = {};
  for (const [name, first] of Object.entries(parts[0].feeds)) {
    const axis = parts[0].axes[name] ?? null;
    if (axis === null) {
      if (parts.some((p) => !p.feeds[name] || p.axes[name] !== null || !sameFeed(p.feeds[name], first))) {
        throw invalid(`cannot batch input ${name}: it has no batch axis and its value differs between the queries`);
      }
      feeds[name] = first;
      continue;
    }
    for (const p of parts) {
      const f = p.feeds[name];
      if (!f || p.axes[name] !== axis || f.dtype !== first.dtype || f.dims.length !== first.dims.length || f.dims.some((d, i) => i !== axis && d !== first.dims[i])) {
        throw invalid(`cannot batch input ${name}: shapes ${fmt(first.dims)} and ${f ? fmt(f.dims) : 'none'} differ beyond the batch axis (dim ${axis})`);
      }
    }
    const outer = elementCount(first.dims.slice(0, axis));
    const inner = elementCount(first.dims.slice(axis + 1));
    const data = new (ctorOf(first.data))(outer * total * inner);
    let offset = 0;
    for (const p of parts) {
      const src = p.feeds[name].data as Float32Array;
      const block = p.rows * inner;
      for (let o = 0; o < outer; o++) (data as Float32Array).set(src.subarray(o * block, (o + 1) * block), (o * total + offset) * inner);
      offset += p.rows;
    }
    const dims = [...first.dims];
    dims[axis] = total;
    feeds[name] = { dtype: first.dtype, dims, data };
  }
  return { rows, feeds };
}

/**
 * Splits each output along its batch axis (from `outputs` specs; absent: axis 0, the layout of
 * records written before batch axes existed) back to the queries, as wire tensors of little-endian
 * bytes (typed arrays are little-endian on every platform ORT ships for). On axis 0 each part is a
 * view into the output's buffer, not a copy: the buffer came from the session thread and nothing
 * else holds or writes it; on a later axis, a strided copy. An output with no batch axis, or whose
 * batch dimension is not the batch's total rows, goes whole to a lone query; in a batch of several
 * it is INTERNAL (the host must not have batched them), never one answer shared between queries.
 */
export function splitOutputs(outputs: Record<string, Feed>, rows: number[], specs?: readonly TensorSpec[]): Record<string, Tensor>[] {
  const total = rows.reduce((a, b) => a + b, 0);
  const parts: Record<string, Tensor>[] = rows.map(() => ({}));
  for (const [name, out] of Object.entries(outputs)) {
    const spec = specs?.find((s) => s.name === name);
    const axis = spec ? batchAxisOf(spec) : out.dims.length > 0 ? 0 : null;
    const bytes = (a: TypedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    if (rows.length === 1) {
      parts[0][name] = { dtype: out.dtype, shape: [...out.dims], data: bytes(out.data) };
      continue;
    }
    if (axis === null || axis >= out.dims.length || out.dims[axis] !== total) {
      throw new InfaasError(ErrorCode.Internal, `output ${name} ${fmt(out.dims)} cannot be split among ${rows.length} queries: ${
        axis === null || axis >= out.dims.length ? 'it has no batch axis' : `its batch axis (dim ${axis}) has ${out.dims[axis]}, not the batch's ${total} rows`}`,
      { output: name, dims: out.dims, rows });
    }
    const outer = elementCount(out.dims.slice(0, axis));
    const inner = elementCount(out.dims.slice(axis + 1));
    let row = 0;
    rows.forEach((r, i) => {
      const shape = [...out.dims];
      shape[axis] = r;
      let data: TypedArray;
      if (outer === 1) {
        data = out.data.subarray(row * inner, (row + r) * inner);
      } else {
        data = new (ctorOf(out.data))(outer * r * inner);
        const src = out.data as Float32Array;
        for (let o = 0; o < outer; o++) (data as Float32Array).set(src.subarray((o * total + row) * inner, (o * total + row + r) * inner), o * r * inner);
      }
      parts[i][name] = { dtype: out.dtype, shape, data: bytes(data) };
      row += r;
    });
  }
  return parts;
}

const ZEROS = { float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array, int64: BigInt64Array } as const;

/** `rows` rows of zeros for every declared input on its batch axis (other dynamic dims as 1): warm-up runs. */
export function zeroInputs(inputs: TensorSpec[], rows: number): Record<string, Feed> {
  const feeds: Record<string, Feed> = {};
  for (const spec of inputs) {
    const axis = batchAxisOf(spec);
    const dims = spec.shape.map((d, i) => (i === axis ? rows : d ?? 1));
    feeds[spec.name] = { dtype: spec.dtype, dims, data: new ZEROS[spec.dtype](elementCount(dims)) };
  }
  return feeds;
}
