// Static int8 quantisation in QDQ form, calibrated on sample inputs: activation ranges come from
// running the fp32 model in ONNX Runtime, then QuantizeLinear/DequantizeLinear pairs go around each
// Conv/MatMul/Gemm so that ORT's level-'all' optimiser fuses them into QLinearConv/QLinearMatMul/QGemm.
// Runs ORT, so call it off a serving event loop (quantize-offload.ts).
import type { DType } from '../../schemas/tensor.js';
import type { TypedArray } from '../bus/codec.js';
import { ort } from './onnx-session.js';
import {
  dimsOf, encodeModel, initializer, node, onnx, readFloatInitializer, TensorType,
  type ModelProto, type NodeProto, type TensorProto,
} from './onnx-graph.js';
import {
  prepareForQuantization, QUANTISED_OPS, quantizePerChannel, quantizeSymmetric,
  unquantisableReason, unsupportedNodes, type QuantizeReport,
} from './quantize.js';

/** One calibration sample: every model input, as ONNX Runtime takes it. */
export type CalibrationFeed = Record<string, { dtype: DType; dims: number[]; data: TypedArray }>;

export interface StaticQuantizeReport extends QuantizeReport {
  /** Calibration samples run, and activation tensors given a range. */
  calibrationSamples: number;
  calibratedTensors: number;
}

interface Range { min: number; max: number }

// ORT's CPU kernels take per-channel weight scales through DequantizeLinear's `axis`, which the
// default domain has only from opset 13; the com.microsoft contrib op has it at any opset, and ORT's
// QDQ fusion accepts either domain.
const MS_DOMAIN = 'com.microsoft';

/** Runs the model with `tensors` exposed as extra outputs over every feed; their min/max (0 included). */
async function calibrate(model: ModelProto, tensors: string[], feeds: CalibrationFeed[]): Promise<Map<string, Range>> {
  const probe = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = probe.graph!;
  const outputs = new Set((g.output ?? []).map((o) => o.name));
  for (const t of tensors) if (!outputs.has(t)) g.output!.push({ name: t, type: { tensorType: { elemType: TensorType.FLOAT } } });
  const session = await ort.InferenceSession.create(encodeModel(probe), { graphOptimizationLevel: 'basic', intraOpNumThreads: 1, interOpNumThreads: 1 });
  const ranges = new Map<string, Range>(tensors.map((t) => [t, { min: 0, max: 0 }]));
  try {
    for (const feed of feeds) {
      const inputs = Object.fromEntries(Object.entries(feed).map(([k, v]) => [k, new ort.Tensor(v.dtype as 'float32', v.data as Float32Array, v.dims)]));
      const res = await session.run(inputs, tensors);
      for (const t of tensors) {
        const r = ranges.get(t)!;
        for (const v of res[t].data as Float32Array) { if (v < r.min) r.min = v; else if (v > r.max) r.max = v; }
        res[t].dispose();
      }
    }
  } finally {
    await session.release();
  }
  return ranges;
}

/** uint8 asymmetric parameters for a range containing 0 (ORT's CPU kernels run u8 activations x s8 weights). */
function activationParams({ min, max }: Range): { scale: number; zeroPoint: number } {
  const scale = max > min ? (max - min) / 255 : 1;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-min / scale))) };
}

interface Rewritten { nodes: NodeProto[]; inits: TensorProto[]; inputs: string[] }

/**
 * A Conv's weight as int8 per output channel and its bias as int32 at x_scale * w_scale[c], each
 * behind a DequantizeLinear (named after the node's output: a weight two nodes share gets one copy
 * per node, since the bias scale depends on each node's input scale).
 */
function convWeights(n: NodeProto, w: TensorProto, bias: TensorProto | undefined, xScale: number, tag: string): Rewritten {
  const dims = dimsOf(w);
  const bf = bias ? readFloatInitializer(bias) : undefined;
  // The int32 bias is bias / (x_scale * w_scale[c]): a near-zero weight channel must not push it past 2^31.
  const minScales = bf ? Float32Array.from(bf, (b) => Math.abs(b) / (xScale * 2 ** 30)) : undefined;
  const { q, scales } = quantizePerChannel(readFloatInitializer(w), dims[0], minScales);
  const inits = [initializer(`${tag}_w_s8`, dims, q), initializer(`${tag}_w_scale`, [dims[0]], scales), initializer(`${tag}_w_zp`, [dims[0]], new Int8Array(dims[0]))];
  const nodes = [{ ...node('DequantizeLinear', [`${tag}_w_s8`, `${tag}_w_scale`, `${tag}_w_zp`], [`${tag}_w_dq`], { axis: 0 }), domain: MS_DOMAIN }];
  const inputs = [n.input![0], `${tag}_w_dq`];
  if (bf) {
    const bs = Float32Array.from(scales, (s) => s * xScale);
    inits.push(initializer(`${tag}_b_i32`, [dims[0]], Int32Array.from(bf, (v, c) => Math.round(v / bs[c]))), initializer(`${tag}_b_scale`, [dims[0]], bs), initializer(`${tag}_b_zp`, [dims[0]], new Int32Array(dims[0])));
    nodes.push({ ...node('DequantizeLinear', [`${tag}_b_i32`, `${tag}_b_scale`, `${tag}_b_zp`], [`${tag}_b_dq`], { axis: 0 }), domain: MS_DOMAIN });
    inputs.push(`${tag}_b_dq`);
  }
  return { nodes, inits, inputs };
}

/** A MatMul/Gemm weight as int8 per tensor (ORT's QLinearMatMul takes one weight scale); a Gemm bias stays float. */
function matMulWeights(n: NodeProto, w: TensorProto, tag: string): Rewritten {
  const { q, scale } = quantizeSymmetric(readFloatInitializer(w));
  return {
    inits: [initializer(`${tag}_w_s8`, dimsOf(w), q), initializer(`${tag}_w_scale`, [], Float32Array.of(scale)), initializer(`${tag}_w_zp`, [], Int8Array.of(0))],
    nodes: [node('DequantizeLinear', [`${tag}_w_s8`, `${tag}_w_scale`, `${tag}_w_zp`], [`${tag}_w_dq`])],
    inputs: [n.input![0], `${tag}_w_dq`, ...(n.opType === 'Gemm' && n.input?.[2] ? [n.input[2]] : [])],
  };
}

/** Nodes to quantise, and why the others keep float weights. */
function selectTargets(g: NonNullable<ModelProto['graph']>, inits: Map<string, TensorProto>): { targets: NodeProto[]; skippedNodes: QuantizeReport['skippedNodes'] } {
  const skippedNodes = unsupportedNodes(g.node ?? []);
  const targets: NodeProto[] = [];
  for (const n of g.node ?? []) {
    if (!QUANTISED_OPS.includes(n.opType!) || n.domain) continue;
    const why = inits.has(n.input![0]) ? 'its input is a constant, not an activation' : unquantisableReason(n, inits);
    if (why) skippedNodes.push({ name: n.name || n.output![0], reason: why });
    else targets.push(n);
  }
  return { targets, skippedNodes };
}

/**
 * Returns a new model with int8 weights and Q/DQ pairs on the calibrated activations: each target's
 * input (unless another target's output already is one) and output. Throws QuantizeRefusedError
 * (from prepareForQuantization) for an opset it cannot upgrade.
 */
export async function quantizeStaticInt8(source: ModelProto, calibration: CalibrationFeed[]): Promise<{ model: ModelProto; report: StaticQuantizeReport }> {
  if (calibration.length === 0) throw new Error('static quantisation needs at least one calibration sample');
  const { model, passes } = prepareForQuantization(source);
  const g = model.graph!;
  const inits = new Map<string, TensorProto>((g.initializer ?? []).map((t) => [t.name!, t]));
  const { targets, skippedNodes } = selectTargets(g, inits);
  const activations = [...new Set(targets.flatMap((n) => [n.input![0], n.output![0]]))];
  const ranges = targets.length > 0 ? await calibrate(model, activations, calibration) : new Map<string, Range>();
  const qparams = new Map<string, { s: string; zp: string; scale: number }>();
  const params = (t: string) => {
    let p = qparams.get(t);
    if (!p) {
      const { scale, zeroPoint } = activationParams(ranges.get(t)!);
      p = { s: `${t}_qscale`, zp: `${t}_qzp`, scale };
      inits.set(p.s, initializer(p.s, [], Float32Array.of(scale)));
      inits.set(p.zp, initializer(p.zp, [], Uint8Array.of(zeroPoint)));
      qparams.set(t, p);
    }
    return p;
  };
  const qdq = (t: string, from: string, to: string) => {
    const p = params(t);
    return [node('QuantizeLinear', [from, p.s, p.zp], [`${t}_q`]), node('DequantizeLinear', [`${t}_q`, p.s, p.zp], [to])];
  };
  const outputs = new Set(targets.map((n) => n.output![0])); // a DQ output after the rewrite
  const dequantised = new Map<string, string>(); // other activations given a Q/DQ pair here
  const before = new Map<NodeProto, NodeProto[]>();
  const after = new Map<NodeProto, NodeProto[]>();
  for (const n of targets) {
    const [x, y] = [n.input![0], n.output![0]];
    const pre: NodeProto[] = [];
    if (!outputs.has(x) && !dequantised.has(x)) {
      dequantised.set(x, `${x}_dq`);
      pre.push(...qdq(x, x, `${x}_dq`));
    }
    const w = inits.get(n.input![1])!;
    const r = n.opType === 'Conv' ? convWeights(n, w, n.input?.[2] ? inits.get(n.input[2]) : undefined, params(x).scale, y) : matMulWeights(n, w, y);
    for (const t of r.inits) inits.set(t.name!, t);
    before.set(n, [...pre, ...r.nodes]);
    // The node writes y_preq; Q/DQ turn it back into y, so consumers and graph outputs keep their names.
    after.set(n, qdq(y, `${y}_preq`, y));
    n.input = [dequantised.get(x) ?? x, ...r.inputs.slice(1)];
    n.output = [`${y}_preq`];
  }
  const out = (g.node ?? []).flatMap((n) => [...(before.get(n) ?? []), n, ...(after.get(n) ?? [])]);
  const used = new Set(out.flatMap((n) => n.input ?? []));
  g.node = out as typeof g.node;
  g.initializer = [...inits.values()].filter((t) => used.has(t.name!)) as typeof g.initializer;
  if (!model.opsetImport!.some((o) => o.domain === MS_DOMAIN)) model.opsetImport!.push({ domain: MS_DOMAIN, version: 1 });
  return {
    model,
    report: { quantizedNodes: targets.length, skippedNodes, passes, calibrationSamples: calibration.length, calibratedTensors: activations.length },
  };
}
