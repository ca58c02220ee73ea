// Dynamic int8 quantisation of an ONNX graph, in the manner of onnxruntime's quantize_dynamic:
// weights are stored as 8-bit integers, activations are quantised at run time (DynamicQuantizeLinear)
// and MatMul/Gemm/Conv run as MatMulInteger/ConvInteger. The result is a real integer graph.
import {
  dimsOf, initializer, node, readFloatInitializer, TensorType,
  type ModelProto, type NodeProto, type TensorProto,
} from './onnx-graph.js';
import { constantsToInitializers, foldBatchNorm, upgradeOpset } from './graph-passes.js';

export interface QuantizeReport {
  quantizedNodes: number;
  skippedNodes: { name: string; reason: string }[];
  /** What the graph passes did before quantising (absent where nothing was needed). */
  passes?: PassReport;
}

export interface PassReport {
  /** Constant nodes turned into initializers. */
  hoistedConstants: number;
  /** The opset the model came with, when it was upgraded to 11, and the ops converted. */
  upgradedFrom?: number;
  converted?: Record<string, number>;
  foldedBatchNorms: number;
}

/** A model the quantiser cannot work on, with the reason (an opset it cannot upgrade, say). */
export class QuantizeRefusedError extends Error {
  override readonly name = 'QuantizeRefusedError';
}

/**
 * Weights out of Constant nodes, an opset-9/10 graph upgraded to 11 (QuantizeLinear and friends
 * need it), BatchNormalization folded into the Conv before it. Throws QuantizeRefusedError when the
 * opset cannot be upgraded, naming the ops that block it.
 */
export function prepareForQuantization(source: ModelProto): { model: ModelProto; passes: PassReport } {
  const hoisted = constantsToInitializers(source);
  const upgraded = upgradeOpset(hoisted.model, 11);
  if (!upgraded.ok) throw new QuantizeRefusedError(upgraded.reason);
  const folded = foldBatchNorm(upgraded.model);
  const passes: PassReport = { hoistedConstants: hoisted.hoisted, foldedBatchNorms: folded.folded };
  if (upgraded.from < 11) Object.assign(passes, { upgradedFrom: upgraded.from, converted: upgraded.converted });
  return { model: folded.model, passes };
}

export const QUANTISED_OPS = ['MatMul', 'Gemm', 'Conv'];

export function attrInt(n: NodeProto, name: string, fallback: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a?.i === undefined || a.i === null ? fallback : Number(a.i);
}

function attrFloat(n: NodeProto, name: string, fallback: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a?.f === undefined || a.f === null ? fallback : a.f;
}

/** Symmetric int8 per-tensor: zero point 0, scale = max|w| / 127. */
export function quantizeSymmetric(w: Float32Array): { q: Int8Array; scale: number } {
  let m = 0;
  for (const v of w) m = Math.max(m, Math.abs(v));
  const scale = m > 0 ? m / 127 : 1;
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i] / scale)));
  return { q, scale };
}

/** Symmetric int8 per output channel (axis 0): one scale per channel (at least `minScales[c]`), zero points 0. */
export function quantizePerChannel(w: Float32Array, channels: number, minScales?: Float32Array): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const wc = w.subarray(c * per, (c + 1) * per);
    let scale = quantizeSymmetric(wc).scale;
    if (minScales && minScales[c] > scale) scale = minScales[c];
    for (let i = 0; i < per; i++) q[c * per + i] = Math.max(-127, Math.min(127, Math.round(wc[i] / scale)));
    scales[c] = scale;
  }
  return { q, scales };
}

function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/** Why a MatMul/Gemm/Conv keeps float weights (undefined: it can be quantised). */
export function unquantisableReason(n: NodeProto, inits: Map<string, TensorProto>): string | undefined {
  const w = n.input?.[1] ? inits.get(n.input[1]) : undefined;
  if (!w || w.dataType !== TensorType.FLOAT) return 'weight is not a float32 initializer';
  const dims = dimsOf(w);
  if (n.opType === 'Conv') return dims.length < 3 ? 'Conv weight of rank < 3' : undefined;
  if (dims.length !== 2) return `${n.opType} weight is ${dims.length}-D (only 2-D weights are quantised)`;
  if (n.opType === 'Gemm' && (attrInt(n, 'transA', 0) !== 0 || attrFloat(n, 'alpha', 1) !== 1 || attrFloat(n, 'beta', 1) !== 1)) return 'Gemm with transA, alpha or beta';
  return undefined;
}

/** Unquantised ops worth naming in a report (ORT has no integer kernel for them). */
export function unsupportedNodes(nodes: NodeProto[]): { name: string; reason: string }[] {
  return nodes.filter((n) => n.opType === 'ConvTranspose')
    .map((n) => ({ name: n.name || n.output![0], reason: 'ConvTranspose keeps float weights (no integer kernel in this quantiser)' }));
}

const CONV_ATTRS = ['kernel_shape', 'pads', 'strides', 'dilations', 'group', 'auto_pad'];

/**
 * Returns a new model; the input is not modified. Runs prepareForQuantization first, so it throws
 * QuantizeRefusedError for an opset it cannot upgrade. Conv weights are quantised per output channel
 * (symmetric, stored as uint8 around one zero point of 128, since ORT's ConvInteger takes a single
 * weight zero point): depthwise convolutions have channels whose ranges differ by orders of magnitude,
 * and one per-tensor scale flattens the small ones to zero.
 */
export function quantizeDynamicInt8(source: ModelProto): { model: ModelProto; report: QuantizeReport } {
  const { model, passes } = prepareForQuantization(source);
  const graph = model.graph!;
  const inits = new Map<string, TensorProto>((graph.initializer ?? []).map((t) => [t.name!, t]));
  const report: QuantizeReport = { quantizedNodes: 0, skippedNodes: unsupportedNodes(graph.node ?? []), passes };
  const quantizedInputs = new Map<string, { q: string; scale: string; zp: string }>();
  const out: NodeProto[] = [];
  const newInits = new Map<string, TensorProto>(); // by name: a weight two nodes share is quantised once
  const add = (...ts: TensorProto[]) => { for (const t of ts) newInits.set(t.name!, t); };
  const dynamicQuant = (x: string) => {
    let r = quantizedInputs.get(x);
    if (!r) {
      r = { q: `${x}_q8`, scale: `${x}_q8_scale`, zp: `${x}_q8_zp` };
      out.push(node('DynamicQuantizeLinear', [x], [r.q, r.scale, r.zp]));
      quantizedInputs.set(x, r);
    }
    return r;
  };
  const rescale = (n: NodeProto, intOut: string, xScale: string, wScaleName: string, result: string) => {
    out.push(
      node('Cast', [intOut], [`${intOut}_f`], { to: TensorType.FLOAT }),
      node('Mul', [xScale, wScaleName], [`${intOut}_s`]),
      node('Mul', [`${intOut}_f`, `${intOut}_s`], [result], {}, `${n.name ?? n.output![0]}_rescale`),
    );
  };
  for (const n of graph.node ?? []) {
    const tag = n.name || n.output![0];
    if (!QUANTISED_OPS.includes(n.opType!) || n.domain) { out.push(n); continue; }
    const why = unquantisableReason(n, inits);
    if (why) { report.skippedNodes.push({ name: tag, reason: why }); out.push(n); continue; }
    const wName = n.input![1];
    const w = inits.get(wName)!;
    const dims = dimsOf(w);
    const x = n.input![0];
    const y = n.output![0];
    if (n.opType === 'Conv') {
      const { q, scales } = quantizePerChannel(readFloatInitializer(w), dims[0]);
      const u8 = Uint8Array.from(q, (v) => v + 128);
      const scaleShape = [1, dims[0], ...dims.slice(2).map(() => 1)];
      add(initializer(`${wName}_u8`, dims, u8), initializer(`${wName}_zp`, [], Uint8Array.of(128)), initializer(`${wName}_scale`, scaleShape, scales));
      const xq = dynamicQuant(x);
      const attrs = (n.attribute ?? []).filter((a) => CONV_ATTRS.includes(a.name!));
      out.push({ opType: 'ConvInteger', input: [xq.q, `${wName}_u8`, xq.zp, `${wName}_zp`], output: [`${y}_i32`], attribute: attrs, name: `${tag}_int8` });
      const bias = n.input?.[2] ? inits.get(n.input[2]) : undefined;
      rescale(n, `${y}_i32`, xq.scale, `${wName}_scale`, bias ? `${y}_nobias` : y);
      if (bias) {
        add(initializer(`${bias.name}_c11`, scaleShape, readFloatInitializer(bias)));
        out.push(node('Add', [`${y}_nobias`, `${bias.name}_c11`], [y]));
      }
    } else {
      const gemm = n.opType === 'Gemm';
      let wf = readFloatInitializer(w);
      let wd = dims;
      if (gemm && attrInt(n, 'transB', 0) === 1) { wf = transpose2d(wf, dims[0], dims[1]); wd = [dims[1], dims[0]]; }
      const { q, scale } = quantizeSymmetric(wf);
      add(initializer(`${wName}_s8`, wd, q), initializer(`${wName}_zp`, [], Int8Array.of(0)), initializer(`${wName}_scale`, [], Float32Array.of(scale)));
      const xq = dynamicQuant(x);
      out.push(node('MatMulInteger', [xq.q, `${wName}_s8`, xq.zp, `${wName}_zp`], [`${y}_i32`], {}, `${tag}_int8`));
      const c = gemm ? n.input?.[2] : undefined;
      rescale(n, `${y}_i32`, xq.scale, `${wName}_scale`, c ? `${y}_nobias` : y);
      if (c) out.push(node('Add', [`${y}_nobias`, c], [y]));
    }
    report.quantizedNodes++;
  }
  const used = new Set(out.flatMap((n) => n.input ?? []));
  graph.node = out as typeof graph.node;
  graph.initializer = [...(graph.initializer ?? []), ...newInits.values()].filter((t) => used.has(t.name!)) as typeof graph.initializer;
  return { model, report };
}
