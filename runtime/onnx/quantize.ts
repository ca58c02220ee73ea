// Dynamic int8 quantisation of an ONNX graph, in the manner of onnxruntime's quantize_dynamic:
// weights are stored as 8-bit integers, activations are quantised at run time (DynamicQuantizeLinear)
// and MatMul/Gemm/Conv run as MatMulInteger/ConvInteger. The result is a real integer graph.
import {
  dimsOf, initializer, node, onnx, readFloatInitializer, TensorType,
  type ModelProto, type NodeProto, type TensorProto,
} from './onnx-graph.js';

export interface QuantizeReport {
  quantizedNodes: number;
  skippedNodes: { name: string; reason: string }[];
}

function attrInt(n: NodeProto, name: string, fallback: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a?.i === undefined || a.i === null ? fallback : Number(a.i);
}

function attrFloat(n: NodeProto, name: string, fallback: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a?.f === undefined || a.f === null ? fallback : a.f;
}

/** Symmetric int8 per-tensor: zero point 0, scale = max|w| / 127. */
function quantizeSymmetric(w: Float32Array): { q: Int8Array; scale: number } {
  let m = 0;
  for (const v of w) m = Math.max(m, Math.abs(v));
  const scale = m > 0 ? m / 127 : 1;
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i] / scale)));
  return { q, scale };
}

/** Asymmetric uint8 per-tensor (ConvInteger on CPU takes uint8 weights). */
function quantizeAsymmetric(w: Float32Array): { q: Uint8Array; scale: number; zeroPoint: number } {
  let lo = 0, hi = 0;
  for (const v of w) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.max(0, Math.min(255, Math.round(-lo / scale)));
  const q = new Uint8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(0, Math.min(255, Math.round(w[i] / scale) + zeroPoint));
  return { q, scale, zeroPoint };
}

function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/** Returns a new model; the input is not modified. Throws if the opset is too old for int8 ops. */
export function quantizeDynamicInt8(source: ModelProto): { model: ModelProto; report: QuantizeReport } {
  const model = onnx.ModelProto.decode(onnx.ModelProto.encode(source).finish());
  const graph = model.graph!;
  const opset = Number(model.opsetImport?.find((o) => !o.domain)?.version ?? 0);
  if (opset < 11) throw new Error(`opset ${opset} is below 11: DynamicQuantizeLinear needs opset 11 or later`);
  const inits = new Map<string, TensorProto>((graph.initializer ?? []).map((t) => [t.name!, t]));
  const report: QuantizeReport = { quantizedNodes: 0, skippedNodes: [] };
  const quantizedInputs = new Map<string, { q: string; scale: string; zp: string }>();
  const out: NodeProto[] = [];
  const newInits: TensorProto[] = [];
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
    const wName = n.input?.[1];
    const w = wName ? inits.get(wName) : undefined;
    const tag = n.name || n.output![0];
    if (!w || w.dataType !== TensorType.FLOAT || !['MatMul', 'Gemm', 'Conv'].includes(n.opType!)) {
      if (['MatMul', 'Gemm', 'Conv'].includes(n.opType!)) report.skippedNodes.push({ name: tag, reason: 'weight is not a float32 initializer' });
      out.push(n);
      continue;
    }
    const dims = dimsOf(w);
    const x = n.input![0];
    const y = n.output![0];
    if (n.opType === 'Conv') {
      const { q, scale, zeroPoint } = quantizeAsymmetric(readFloatInitializer(w));
      newInits.push(initializer(`${wName}_u8`, dims, q), initializer(`${wName}_zp`, [], Uint8Array.of(zeroPoint)), initializer(`${wName}_scale`, [], Float32Array.of(scale)));
      const xq = dynamicQuant(x);
      const attrs = (n.attribute ?? []).filter((a) => ['kernel_shape', 'pads', 'strides', 'dilations', 'group', 'auto_pad'].includes(a.name!));
      out.push({ opType: 'ConvInteger', input: [xq.q, `${wName}_u8`, xq.zp, `${wName}_zp`], output: [`${y}_i32`], attribute: attrs, name: `${tag}_int8` });
      const bias = n.input?.[2] ? inits.get(n.input[2]) : undefined;
      rescale(n, `${y}_i32`, xq.scale, `${wName}_scale`, bias ? `${y}_nobias` : y);
      if (bias) {
        newInits.push(initializer(`${bias.name}_c11`, [1, dimsOf(bias)[0], 1, 1], readFloatInitializer(bias)));
        out.push(node('Add', [`${y}_nobias`, `${bias.name}_c11`], [y]));
      }
    } else {
      const gemm = n.opType === 'Gemm';
      if (dims.length !== 2 || (gemm && (attrInt(n, 'transA', 0) !== 0 || attrFloat(n, 'alpha', 1) !== 1 || attrFloat(n, 'beta', 1) !== 1))) {
        report.skippedNodes.push({ name: tag, reason: 'only plain 2-D MatMul/Gemm weights are quantised' });
        out.push(n);
        continue;
      }
      let wf = readFloatInitializer(w);
      let wd = dims;
      if (gemm && attrInt(n, 'transB', 0) === 1) { wf = transpose2d(wf, dims[0], dims[1]); wd = [dims[1], dims[0]]; }
      const { q, scale } = quantizeSymmetric(wf);
      newInits.push(initializer(`${wName}_s8`, wd, q), initializer(`${wName}_zp`, [], Int8Array.of(0)), initializer(`${wName}_scale`, [], Float32Array.of(scale)));
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
  graph.initializer = [...(graph.initializer ?? []), ...newInits].filter((t) => used.has(t.name!)) as typeof graph.initializer;
  return { model, report };
}
