// `infaas validation-set`: builds a format-2 validation set (runtime/validation-set.ts) from files,
// one per sample and input: JSON tensors, NumPy .npy, or raw little-endian bytes; labels from a text file.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { BYTES_PER_ELEMENT, DTYPES, Tensor as TensorSchema, type DType, type Tensor } from '../schemas/tensor.js';
import type { Metric, ProfileShape } from '../schemas/registry.js';
import { isValid } from '../schemas/validate.js';
import { arrayToTensor, elementCount, tensorToArray } from '../runtime/bus/codec.js';
import { modelSignature, parseModel } from '../runtime/onnx/onnx-session.js';
import { encodeValidationSamples, parseValidationSet, type Label, type ValidationSetDoc } from '../runtime/validation-set.js';
import { addValidationSetCommand } from './validation-set-command.js';

export { addValidationSetCommand };

export interface ValidationSetOptions {
  /** Input name -> file patterns (a directory, a file, or a glob with * and ? in the file name). */
  inputs: Record<string, string[]>;
  /** For raw files: each input's dtype and one sample's shape. */
  dtypes: Record<string, DType>;
  shapes: ProfileShape;
  labels?: string;
  /** How to read the labels file (default: class when every line is integers, text with a charset). */
  labelKind?: 'class' | 'text';
  charset?: string;
  /** Append a space to the charset, as PaddleOCR's recognisers do (use_space_char). */
  space?: boolean;
  limit?: number;
  /** Check the result against this ONNX file (inputs as the file says, batch axis 0). */
  model?: string;
  metric?: Metric;
}

const fail = (message: string) => new InvalidArgumentError(message);

/** Files a pattern names, in natural order (img2 before img10). */
export function expandFiles(pattern: string): string[] {
  const natural = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });
  const isDir = (p: string) => { try { return statSync(p).isDirectory(); } catch { return false; } };
  if (isDir(pattern)) return readdirSync(pattern).sort(natural).map((f) => join(pattern, f)).filter((f) => !isDir(f) && !basename(f).startsWith('.'));
  if (!/[*?]/.test(basename(pattern))) {
    if (!statSync(pattern, { throwIfNoEntry: false })) throw fail(`no such file: ${pattern}`);
    return [pattern];
  }
  const dir = dirname(pattern);
  if (/[*?]/.test(dir)) throw fail(`wildcards only in the file name, not in directories: ${pattern}`);
  const re = new RegExp(`^${basename(pattern).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  if (!isDir(dir)) throw fail(`no such directory: ${dir}`);
  return readdirSync(dir).filter((f) => re.test(f)).sort(natural).map((f) => join(dir, f)).filter((f) => !isDir(f));
}

const NPY_DTYPES: Record<string, DType> = { '<f4': 'float32', '<f8': 'float64', '|i1': 'int8', '|u1': 'uint8', '<i4': 'int32', '<i8': 'int64', '|b1': 'uint8' };

/** A NumPy .npy file (format 1-3, C order, little-endian numeric dtypes) as a tensor. */
export function parseNpy(bytes: Uint8Array, what = 'npy'): Tensor {
  if (bytes.length < 10 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY') throw fail(`${what}: not a .npy file`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  const dtype = descr ? NPY_DTYPES[descr] : undefined;
  if (!dtype) throw fail(`${what}: dtype ${descr ?? '?'} is not one of ${Object.keys(NPY_DTYPES).join(', ')} (little-endian ${DTYPES.join(', ')})`);
  if (fortran) throw fail(`${what}: Fortran order; save it C-ordered (numpy.ascontiguousarray)`);
  if (shapeText === undefined) throw fail(`${what}: no shape in the header`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const data = bytes.slice(start + headerLen);
  const want = elementCount(shape) * BYTES_PER_ELEMENT[dtype];
  if (data.byteLength !== want) throw fail(`${what}: shape [${shape.join(',')}] of ${dtype} needs ${want} bytes, the file has ${data.byteLength}`);
  return { dtype, shape, data };
}

/** One sample of one input from a file: .json ({dtype, shape, data}), .npy, or raw bytes with the given dtype and shape. */
export function readSampleFile(path: string, raw?: { dtype?: DType; shape?: number[] }): Tensor {
  const bytes = readFileSync(path);
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') return parseNpy(bytes, path);
  if (ext === '.json') {
    let doc: unknown;
    try { doc = JSON.parse(bytes.toString('utf8')); } catch (err) { throw fail(`${path}: not JSON (${(err as Error).message})`); }
    if (!isValid(TensorSchema, doc)) throw fail(`${path}: expected a tensor {"dtype": "float32", "shape": [1, ...], "data": [numbers]}`);
    try {
      return arrayToTensor(doc.dtype, doc.shape, tensorToArray(doc, path)); // raw bytes: 4 bytes a float instead of MessagePack's 9
    } catch (err) { throw fail((err as Error).message); }
  }
  if (!raw?.dtype || !raw.shape) throw fail(`${path}: a raw file needs --dtype and --shape for its input (or use .json / .npy)`);
  const want = elementCount(raw.shape) * BYTES_PER_ELEMENT[raw.dtype];
  if (bytes.byteLength !== want) throw fail(`${path}: shape [${raw.shape.join(',')}] of ${raw.dtype} needs ${want} bytes, the file has ${bytes.byteLength}`);
  return { dtype: raw.dtype, shape: raw.shape, data: new Uint8Array(bytes) };
}

function lines(text: string): string[] {
  const all = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (all.length > 0 && all[all.length - 1] === '') all.pop();
  return all;
}

/** One label per line: an integer (or integers separated by spaces or commas: one per output row), or text. */
export function readLabels(text: string, kind: 'class' | 'text' | undefined): Label[] {
  const rows = lines(text);
  const isInts = (l: string) => /^\s*\d+(\s*[,\s]\s*\d+)*\s*$/.test(l);
  const k = kind ?? (rows.every(isInts) ? 'class' : 'text');
  if (k === 'text') return rows;
  return rows.map((l, i) => {
    if (!isInts(l)) throw fail(`labels line ${i + 1}: "${l.slice(0, 40)}" is not a whole number (text labels need --charset)`);
    const values = l.trim().split(/[\s,]+/).map(Number);
    return values.length === 1 ? values[0] : values;
  });
}

/** One character per line (as PaddleOCR's ppocr_keys_v1.txt). */
export function readCharset(text: string, space = false): string[] {
  const chars = lines(text);
  const bad = chars.findIndex((c) => [...c].length !== 1);
  if (bad >= 0) throw fail(`charset line ${bad + 1}: "${chars[bad]}" is not one character`);
  return space ? [...chars, ' '] : chars;
}

/** Reads every file and builds the set; `print` gets progress lines. */
export function buildValidationSet(o: ValidationSetOptions, print: (line: string) => void): { bytes: Uint8Array; samples: number; summary: string } {
  const names = Object.keys(o.inputs);
  if (names.length === 0) throw fail('give the files of each model input: --input NAME=FILES');
  const files = Object.fromEntries(names.map((n) => [n, o.inputs[n].flatMap(expandFiles)]));
  for (const n of names) {
    if (files[n].length === 0) throw fail(`no files for input "${n}" (${o.inputs[n].join(', ')})`);
    print(`${n}: ${files[n].length} files`);
  }
  const count = files[names[0]].length;
  const uneven = names.find((n) => files[n].length !== count);
  if (uneven) throw fail(`input "${names[0]}" has ${count} files but "${uneven}" has ${files[uneven].length}: one file per sample and input`);
  const labels = o.labels ? readLabels(readFileSync(o.labels, 'utf8'), o.labelKind ?? (o.charset ? 'text' : undefined)) : undefined;
  if (labels && labels.length !== count) throw fail(`${o.labels} has ${labels.length} labels for ${count} samples: one line per sample`);
  const n = Math.min(count, o.limit ?? count);
  const samples: ValidationSetDoc['samples'] = [];
  const every = Math.max(1, Math.ceil(n / 10));
  for (let i = 0; i < n; i++) {
    const inputs = Object.fromEntries(names.map((name) => [name, readSampleFile(files[name][i], { dtype: o.dtypes[name], shape: o.shapes[name] })]));
    samples.push({ inputs, ...(labels ? { label: labels[i] } : {}) });
    if (n >= 20 && (i + 1) % every === 0) print(`read ${i + 1}/${n} samples`);
  }
  const charset = o.charset ? readCharset(readFileSync(o.charset, 'utf8'), o.space) : undefined;
  const bytes = encodeValidationSamples(samples, charset);
  const kind = labels === undefined ? 'none' : typeof labels[0] === 'string' ? 'text' : 'class';
  if (o.model) {
    const sig = modelSignature(parseModel(readFileSync(o.model)));
    const metric = o.metric ?? { kind: kind === 'class' ? 'top1' : kind === 'text' ? 'ctc' : 'fidelity' };
    const set = parseValidationSet(bytes, sig.inputs, sig.outputs, metric);
    print(`fits ${basename(o.model)} for metric ${metric.kind}${set.shapes.length > 0 ? ` at ${set.shapes.length} size(s)` : ''}`);
  }
  const shapes = [...new Set(samples.map((s) => names.map((name) => `${name} [${s.inputs[name].shape.join(',')}]`).join(', ')))];
  const summary = `${n} samples; ${shapes.slice(0, 3).join('; ')}${shapes.length > 3 ? `; ${shapes.length - 3} more sizes` : ''}; labels: ${kind}${charset ? ` (charset of ${charset.length})` : ''}; ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB`;
  return { bytes, samples: n, summary };
}

