// `infaas query`: inputs from a zoo digit, a JSON file or raw files; answers summarised by shape;
// retryable errors retried while the person is willing to wait; outputs optionally written to files.
import { readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { BYTES_PER_ELEMENT, DTYPES, type DType, type Tensor, type TensorSpec } from '../schemas/tensor.js';
import type { Query, QueryResult } from '../schemas/query.js';
import { ErrorCode, InfaasError } from '../schemas/errors.js';
import { arrayToTensor, elementCount, packMsgpack, tensorForJson, tensorToArray, type TypedArray } from '../runtime/bus/codec.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { RegistryClient } from '../runtime/client/registry-client.js';
import { fmtMs, formatTable } from '../runtime/table.js';
import type { Stack } from './local.js';
import { loadSplit } from '../zoo/data.js';
import { parseRawInput, type RawInput } from './query-options.js';

export { parseRawInput, type RawInput };

export interface QueryFlags {
  task: string;
  model?: string;
  variant?: string;
  latency: number;
  accuracy?: number;
  maxCost?: number;
  digit: number;
  inputs?: string;
  input: RawInput[];
  count: number;
  /** Seconds to keep retrying retryable errors (INSTANCE_LOADING, NO_CAPACITY...). */
  wait: number;
  out?: string;
  /** False: tensors beyond the max payload are PAYLOAD_TOO_LARGE instead of going by reference. */
  claimCheck: boolean;
}

/** A raw file as a tensor: its dtype and dims from the flag, else the model's declaration; one unknown dim from the size. */
export function rawTensor(input: RawInput, bytes: Uint8Array, declared?: TensorSpec): Tensor {
  const dtype = input.dtype ?? declared?.dtype;
  const dims = input.dims ?? declared?.shape;
  if (!dtype || !dims) throw new InfaasError(ErrorCode.BadRequest, `--input ${input.name}: say its dtype and dims (name=@file:dtype:dims): the model's declaration ${declared ? 'has dynamic sizes' : 'is not known here'}`);
  const per = BYTES_PER_ELEMENT[dtype];
  if (bytes.byteLength % per !== 0) throw new InfaasError(ErrorCode.BadRequest, `--input ${input.name}: ${bytes.byteLength} bytes is not a whole number of ${dtype} (${per} bytes each)`);
  const known = dims.reduce<number>((a, d) => a * (d ?? 1), 1);
  const unknown = dims.filter((d) => d === null).length;
  const n = bytes.byteLength / per;
  // A declared shape with a dynamic batch (and nothing else dynamic) takes its rows from the size.
  if (unknown > 1 || (unknown === 1 && (known === 0 || n % known !== 0))) {
    throw new InfaasError(ErrorCode.BadRequest, `--input ${input.name}: cannot fit ${n} ${dtype} values into [${dims.map((d) => d ?? '?').join(',')}]: say the dims (name=@file:${dtype}:AxBxC)`);
  }
  const shape = dims.map((d) => d ?? n / known);
  if (elementCount(shape) !== n) throw new InfaasError(ErrorCode.BadRequest, `--input ${input.name}: shape [${shape.join(',')}] of ${dtype} needs ${elementCount(shape) * per} bytes, the file has ${bytes.byteLength}`);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return { dtype, shape, data: copy };
}

/**
 * JSON inputs {name: {dtype?, shape, data: [numbers]}} as raw bytes of each input's dtype (the
 * JSON's, else the model's), not the float64 a JSON number would otherwise travel as.
 */
export function jsonTensors(doc: unknown, declared: ReadonlyMap<string, TensorSpec>): Record<string, Tensor> {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new InfaasError(ErrorCode.BadRequest, '--inputs: expected a JSON object {name: {dtype, shape, data}}');
  const out: Record<string, Tensor> = {};
  for (const [name, v] of Object.entries(doc as Record<string, unknown>)) {
    const t = v as { dtype?: unknown; shape?: unknown; data?: unknown };
    const dtype = (typeof t?.dtype === 'string' ? t.dtype : declared.get(name)?.dtype) as DType | undefined;
    if (!dtype || !(DTYPES as readonly string[]).includes(dtype)) throw new InfaasError(ErrorCode.BadRequest, `--inputs ${name}: a dtype (one of ${DTYPES.join(', ')}) is needed: none given and the model's is not known here`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new InfaasError(ErrorCode.BadRequest, `--inputs ${name}: shape must be an array of whole numbers`);
    if (!Array.isArray(t.data) || !t.data.every((x) => typeof x === 'number')) throw new InfaasError(ErrorCode.BadRequest, `--inputs ${name}: data must be a flat array of numbers`);
    const values = tensorToArray({ dtype, shape: t.shape as number[], data: t.data as number[] }, `--inputs ${name}`);
    out[name] = arrayToTensor(dtype, t.shape as number[], values);
  }
  return out;
}

/** min, max, mean of a tensor in one pass (no spread of a large array onto the stack). */
export function summarise(values: TypedArray): { min: number; max: number; mean: number } {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return values.length === 0 ? { min: NaN, max: NaN, mean: NaN } : { min, max, mean: sum / values.length };
}

/** Argmax of each row, only for what looks like a classifier's output: float [rows, classes >= 2]. */
export function rowArgmax(t: Tensor, values: TypedArray): number[] | undefined {
  if (t.shape.length !== 2 || t.shape[1] < 2 || !t.dtype.startsWith('float')) return undefined;
  const [rows, classes] = t.shape;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (values[r * classes + c] > values[r * classes + best]) best = c;
    out.push(best);
  }
  return out;
}

const fmtNum = (v: number): string => (Number.isNaN(v) ? '-' : Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toPrecision(4));

/** One row per output: name, dtype, shape, min/max/mean, and argmax per row for a classifier. */
export function outputRows(k: number, outputs: Record<string, Tensor>): (string | number)[][] {
  return Object.entries(outputs).map(([name, t]) => {
    const values = tensorToArray(t, `output ${name}`);
    const s = summarise(values);
    const arg = rowArgmax(t, values);
    const shown = arg ? `${arg.slice(0, 8).join(' ')}${arg.length > 8 ? ` ... (${arg.length} rows)` : ''}` : '-';
    return [k, name, t.dtype, `[${t.shape.join(',')}]`, fmtNum(s.min), fmtNum(s.max), fmtNum(s.mean), shown];
  });
}

/** Writes outputs: .json {name: {dtype, shape, data: [numbers]}}, .bin the one output's raw bytes, else MessagePack {name: {dtype, shape, data: bytes}}. */
export function writeOutputs(path: string, outputs: Record<string, Tensor>): void {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') {
    writeFileSync(path, JSON.stringify(Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, tensorForJson(v)]))) + '\n');
  } else if (ext === '.bin') {
    const all = Object.values(outputs);
    if (all.length !== 1) throw new InfaasError(ErrorCode.BadRequest, `--out ${path}: a .bin file holds one output's raw bytes; this answer has ${all.length} (use .json or .msgpack)`);
    const a = tensorToArray(all[0]);
    writeFileSync(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  } else {
    writeFileSync(path, packMsgpack(Object.fromEntries(Object.entries(outputs).map(([k, v]) => {
      const a = tensorToArray(v);
      return [k, { dtype: v.dtype, shape: v.shape, data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) }];
    }))));
  }
}

/** `out.json` for one answer; `out.0.json`, `out.1.json`... for several. */
function outPath(path: string, k: number, count: number): string {
  if (count === 1) return path;
  const ext = extname(path);
  return `${path.slice(0, path.length - ext.length)}.${k}${ext}`;
}

function parseJsonFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InfaasError(ErrorCode.BadRequest, `--inputs ${path}: ${(err as Error).message}`);
  }
}

/** The model's declared inputs, when the query names a model or variant (or a task whose models all agree). */
async function declaredInputs(stack: Stack, f: QueryFlags): Promise<Map<string, TensorSpec>> {
  const rc = new RegistryClient(stack.nc, stack.stores);
  const names = f.variant ? [f.variant.split('.')[0]] : f.model ? [f.model] : (await rc.models(f.task)).map((m) => m.name);
  const specs = await Promise.all(names.map(async (n) => (await rc.info(n)).model.inputs));
  const out = new Map<string, TensorSpec>();
  for (const s of specs[0] ?? []) if (specs.every((other) => other.some((o) => o.name === s.name && o.dtype === s.dtype && JSON.stringify(o.shape) === JSON.stringify(s.shape)))) out.set(s.name, s);
  return out;
}

export async function runQueryCommand(stack: Stack, f: QueryFlags, print: (s: string) => void, warn: (s: string) => void): Promise<void> {
  const qc = new QueryClient(stack.nc);
  const custom = f.inputs !== undefined || f.input.length > 0;
  const doc = f.inputs !== undefined ? parseJsonFile(f.inputs) : undefined;
  // The model's declaration is read only when a flag or the JSON leaves a dtype or a size unsaid.
  const unsaid = f.input.some((i) => !i.dtype || !i.dims || i.dims.includes(null))
    || (doc !== null && typeof doc === 'object' && Object.values(doc as Record<string, { dtype?: unknown }>).some((t) => typeof t?.dtype !== 'string'));
  const declared = unsaid ? await declaredInputs(stack, f).catch(() => new Map<string, TensorSpec>()) : new Map<string, TensorSpec>();
  let fixed: Record<string, Tensor> | undefined;
  if (custom) {
    fixed = doc !== undefined ? jsonTensors(doc, declared) : {};
    for (const i of f.input) fixed[i.name] = rawTensor(i, readFileSync(i.file), declared.get(i.name));
  }
  const { images, labels } = custom ? { images: new Float32Array(0), labels: new Int32Array(0) } : loadSplit('validation');
  const target = f.variant ? { variant: f.variant } : f.model ? { model: f.model } : { task: f.task };
  const slo = { latencyMs: f.latency, ...(f.accuracy !== undefined ? { minAccuracy: f.accuracy } : {}), ...(f.maxCost !== undefined ? { maxCostPerQuery: f.maxCost } : {}) };
  const rows: (string | number)[][] = [];
  const outRows: (string | number)[][] = [];
  let correct = 0;
  for (let k = 0; k < f.count; k++) {
    const i = (f.digit + k) % Math.max(1, labels.length);
    const inputs: Query['inputs'] = fixed ?? { image: arrayToTensor('float32', [1, 1, 28, 28], images.slice(i * 784, (i + 1) * 784)) };
    const started = performance.now();
    const a: QueryResult = await qc.query({ id: `cli-${k}`, ...target, inputs, slo }, {
      claimCheck: f.claimCheck,
      retryUntil: Date.now() + f.wait * 1000,
      onRetry: (err, ms) => warn(`${err.code}: retrying in ${Math.round(ms)} ms (${err.message.slice(0, 160)})`),
    });
    const ms = performance.now() - started;
    let answer: string | number = '-';
    if (!custom) {
      const out = a.outputs[Object.keys(a.outputs)[0]];
      const predicted = out ? rowArgmax(out, tensorToArray(out))?.[0] : undefined;
      if (predicted === labels[i]) correct++;
      answer = `${predicted ?? '?'} (label ${labels[i]})`;
    }
    rows.push([k, a.model, a.variant.slice(a.model.length + 1), a.worker, a.hardwareClass, fmtMs(ms), fmtMs(a.timings.inferenceMs), `$${a.cost.toExponential(2)}`, ...(custom ? [] : [answer])]);
    outRows.push(...outputRows(k, a.outputs));
    if (f.out) writeOutputs(outPath(f.out, k, f.count), a.outputs);
  }
  print(formatTable(['#', 'model', 'variant', 'worker', 'class', 'client ms', 'inference ms', 'cost', ...(custom ? [] : ['answer'])], rows));
  print('');
  print(formatTable(['#', 'output', 'dtype', 'shape', 'min', 'max', 'mean', 'argmax per row'], outRows));
  if (!custom && f.count > 1) print(`${correct}/${f.count} correct`);
  if (f.out) print(`outputs written to ${f.count === 1 ? f.out : `${outPath(f.out, 0, f.count)} ... ${outPath(f.out, f.count - 1, f.count)}`}`);
}
