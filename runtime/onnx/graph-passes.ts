// Graph rewrites that make third-party exports quantisable: weights held in Constant nodes become
// initializers, Conv+BatchNormalization pairs are folded, and opset 9/10 graphs are upgraded to 11.
// Pure onnx-proto work: no ONNX Runtime here. Every pass returns a new model and leaves its input alone.
import {
  dimsOf, initializer, onnx, readFloatInitializer, TensorType,
  type ModelProto, type NodeProto, type TensorProto,
} from './onnx-graph.js';

type Attribute = NonNullable<NodeProto['attribute']>[number];
const A = onnx.AttributeProto.AttributeType;

function cloneModel(model: ModelProto): ModelProto {
  return onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
}

export function defaultOpset(model: ModelProto): number {
  return Number(model.opsetImport?.find((o) => !o.domain)?.version ?? 0);
}

function attr(n: NodeProto, name: string): Attribute | undefined {
  return n.attribute?.find((a) => a.name === name);
}

/** protobufjs hands int64 fields over as Long objects; BigInt keeps INT64_MAX exact (Slice ends). */
function int64s(a: Attribute | undefined): bigint[] {
  return (a?.ints ?? []).map((v) => BigInt(String(v)));
}

function int64Tensor(name: string, values: bigint[], dims: number[] = [values.length]): TensorProto {
  return initializer(name, dims, BigInt64Array.from(values));
}

/** The tensor a Constant node holds, when its value is numeric (sparse and string constants stay nodes). */
function constantTensor(n: NodeProto, name: string): TensorProto | undefined {
  const a = n.attribute?.[0];
  if (!a || n.attribute!.length !== 1) return undefined;
  if (a.name === 'value' && a.t) return { ...a.t, name };
  if (a.name === 'value_float') return initializer(name, [], Float32Array.of(a.f ?? 0));
  if (a.name === 'value_floats') return initializer(name, [a.floats?.length ?? 0], Float32Array.from(a.floats ?? []));
  if (a.name === 'value_int') return int64Tensor(name, [BigInt(String(a.i ?? 0))], []);
  if (a.name === 'value_ints') return int64Tensor(name, int64s(a));
  return undefined;
}

/**
 * Turns every top-level Constant node with a numeric value into a graph initializer of the same
 * name (PaddlePaddle's exporter keeps all weights in Constant nodes, where no quantiser looks).
 * A Constant that is itself a graph output stays a node: ORT does not serve initializers as outputs.
 */
export function constantsToInitializers(source: ModelProto): { model: ModelProto; hoisted: number } {
  const model = cloneModel(source);
  const g = model.graph!;
  const outputs = new Set((g.output ?? []).map((o) => o.name));
  const kept: NodeProto[] = [];
  const hoisted: TensorProto[] = [];
  for (const n of g.node ?? []) {
    const name = n.output?.[0];
    const t = n.opType === 'Constant' && (!n.domain || n.domain === 'ai.onnx') && name && !outputs.has(name) ? constantTensor(n, name) : undefined;
    if (t) hoisted.push(t);
    else kept.push(n);
  }
  g.node = kept as typeof g.node;
  g.initializer = [...(g.initializer ?? []), ...hoisted] as typeof g.initializer;
  return { model, hoisted: hoisted.length };
}

/** The nodes that read each tensor, so a pass can tell a tensor's only reader. */
function consumers(nodes: NodeProto[]): Map<string, NodeProto[]> {
  const m = new Map<string, NodeProto[]>();
  for (const n of nodes) for (const i of n.input ?? []) if (i) m.set(i, [...(m.get(i) ?? []), n]);
  return m;
}

/**
 * Folds a BatchNormalization that is the only reader of a Conv's output into the Conv's weights and
 * bias (inference form: y = gamma (x - mean) / sqrt(var + eps) + beta). A quantiser then sees one
 * Conv per layer; ORT would fold it too, but not once Q/DQ pairs sit between the two.
 */
export function foldBatchNorm(source: ModelProto): { model: ModelProto; folded: number } {
  const model = cloneModel(source);
  const g = model.graph!;
  const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  const readers = consumers(g.node ?? []);
  const outputs = new Set((g.output ?? []).map((o) => o.name));
  const dropped = new Set<NodeProto>();
  let folded = 0;
  for (const conv of g.node ?? []) {
    if (conv.opType !== 'Conv' || conv.domain) continue;
    const y = conv.output![0];
    const r = readers.get(y) ?? [];
    const bn = r[0];
    if (r.length !== 1 || outputs.has(y) || bn.opType !== 'BatchNormalization' || bn.input![0] !== y || (bn.output ?? []).filter(Boolean).length !== 1) continue;
    const w = inits.get(conv.input![1]);
    const b = conv.input![2] ? inits.get(conv.input![2]) : undefined;
    const params = bn.input!.slice(1, 5).map((n) => inits.get(n));
    if (!w || w.dataType !== TensorType.FLOAT || (conv.input![2] && !b) || params.some((p) => !p || p.dataType !== TensorType.FLOAT)) continue;
    const [gamma, beta, mean, variance] = params.map((p) => readFloatInitializer(p!));
    const eps = attr(bn, 'epsilon')?.f ?? 1e-5;
    const dims = dimsOf(w);
    const per = dims.slice(1).reduce((a, c) => a * c, 1);
    const wf = readFloatInitializer(w);
    const bf = b ? readFloatInitializer(b) : new Float32Array(dims[0]);
    const nw = new Float32Array(wf.length);
    const nb = new Float32Array(dims[0]);
    for (let c = 0; c < dims[0]; c++) {
      const k = gamma[c] / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < per; i++) nw[c * per + i] = wf[c * per + i] * k;
      nb[c] = (bf[c] - mean[c]) * k + beta[c];
    }
    const base = conv.name || y;
    const wName = `${base}_bnw`, bName = `${base}_bnb`;
    inits.set(wName, initializer(wName, dims, nw));
    inits.set(bName, initializer(bName, [dims[0]], nb));
    conv.input = [conv.input![0], wName, bName];
    conv.output = [bn.output![0]];
    dropped.add(bn);
    folded++;
  }
  const nodes = (g.node ?? []).filter((n) => !dropped.has(n));
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  for (const o of g.output ?? []) used.add(o.name!);
  g.node = nodes as typeof g.node;
  g.initializer = [...inits.values()].filter((t) => used.has(t.name!)) as typeof g.initializer;
  return { model, folded };
}

export type UpgradeResult =
  | { ok: true; model: ModelProto; from: number; converted: Record<string, number> }
  | { ok: false; from: number; reason: string };

/**
 * Default-domain ops whose schema changed between opset 9 and 11 in a way that matters to a graph
 * (from ONNX's Changelog.md). Every other op with a version 10 or 11 changed compatibly: negative
 * axes allowed (ArgMax, Concat, Flatten, Gather, Softmax, Reduce*, Squeeze, Split...), optional
 * attributes with the old default (MaxPool/AveragePool ceil_mode, DepthToSpace mode, TopK largest),
 * or is new in 10/11 and cannot appear in an older graph.
 */
const CHANGED = new Set(['Clip', 'Slice', 'Pad', 'TopK', 'Upsample', 'Resize', 'Dropout', 'Scatter']);
const SUBGRAPH_OPS = new Set(['If', 'Loop', 'Scan']);

interface Rewrite {
  inits: Map<string, TensorProto>;
  /** A fresh initializer name derived from a node's. */
  fresh(base: string, suffix: string): string;
  used: Map<string, NodeProto[]>;
  outputs: Set<string>;
}

/** The node rewritten for the target opset (the same node when it needs nothing), or why it cannot be. */
type Converter = (n: NodeProto, from: number, r: Rewrite) => NodeProto | string;

const withoutAttrs = (n: NodeProto, names: string[]): Attribute[] => (n.attribute ?? []).filter((a) => !names.includes(a.name!));

const converters: Record<string, Converter> = {
  // Clip-6 took min/max attributes (defaults: the float range); Clip-11 takes optional scalar inputs.
  // Clip-6 is float-only and PaddlePaddle/PyTorch exports clip float32 activations: scalars are float32.
  Clip: (n, from, r) => {
    if (from >= 11) return n;
    const inputs = [n.input![0]];
    for (const key of ['min', 'max']) {
      const a = attr(n, key);
      if (!a) { inputs.push(''); continue; }
      const name = r.fresh(n.name || n.output![0], `clip_${key}`);
      r.inits.set(name, initializer(name, [], Float32Array.of(a.f ?? 0)));
      inputs.push(name);
    }
    while (inputs[inputs.length - 1] === '') inputs.pop();
    return { ...n, input: inputs, attribute: withoutAttrs(n, ['min', 'max']) };
  },
  // Slice-1: starts/ends/axes attributes; Slice-10: int64 inputs (steps added, default 1).
  Slice: (n, from, r) => {
    if (from >= 10) return n;
    const base = n.name || n.output![0];
    const inputs = [n.input![0]];
    for (const key of ['starts', 'ends', 'axes']) {
      const a = attr(n, key);
      if (!a) break; // axes is optional and last
      const name = r.fresh(base, `slice_${key}`);
      r.inits.set(name, int64Tensor(name, int64s(a)));
      inputs.push(name);
    }
    return { ...n, input: inputs, attribute: withoutAttrs(n, ['starts', 'ends', 'axes']) };
  },
  // Pad-2: pads/value attributes (float tensors only); Pad-11: pads as int64 input, value as a scalar input.
  Pad: (n, _from, r) => {
    const base = n.name || n.output![0];
    const pads = r.fresh(base, 'pads');
    r.inits.set(pads, int64Tensor(pads, int64s(attr(n, 'pads'))));
    const inputs = [n.input![0], pads];
    const value = attr(n, 'value')?.f ?? 0;
    if (value !== 0) {
      const v = r.fresh(base, 'pad_value');
      r.inits.set(v, initializer(v, [], Float32Array.of(value)));
      inputs.push(v);
    }
    return { ...n, input: inputs, attribute: withoutAttrs(n, ['pads', 'value']) };
  },
  // TopK-1: k attribute; TopK-10: k as a 1-element int64 input.
  TopK: (n, from, r) => {
    if (from >= 10) return n;
    const k = r.fresh(n.name || n.output![0], 'topk_k');
    r.inits.set(k, int64Tensor(k, [BigInt(String(attr(n, 'k')?.i ?? 0))]));
    return { ...n, input: [n.input![0], k], attribute: withoutAttrs(n, ['k']) };
  },
  // Upsample-9 (deprecated in 10, gone from ORT's opset-11 kernels) is Resize-11 with asymmetric
  // coordinates; it only enlarges, and its nearest pixel is the floor (what ORT's Upsample computes).
  Upsample: (n, _from, r) => resize(n, r, 'upsample'),
  Resize: (n, from, r) => (from >= 11 ? n : resize(n, r, 'resize')),
  // Dropout-10 made the optional mask output boolean; a graph that reads the mask would change type.
  Dropout: (n, from, r) => {
    const mask = n.output?.[1];
    if (from >= 10 || !mask) return n;
    if (r.used.has(mask) || r.outputs.has(mask)) return 'Dropout (its mask output, read by the graph, became boolean in opset 10)';
    return { ...n, output: [n.output![0]] };
  },
  // Scatter-9 is ScatterElements-11 under a new name (Scatter is deprecated in 11).
  Scatter: (n) => ({ ...n, opType: 'ScatterElements' }),
};

/** Upsample-9 / Resize-10 (X, scales) to Resize-11 (X, roi, scales) with the same coordinates. */
function resize(n: NodeProto, r: Rewrite, was: 'upsample' | 'resize'): NodeProto | string {
  const mode = new TextDecoder().decode(attr(n, 'mode')?.s ?? new TextEncoder().encode('nearest'));
  const op = was === 'upsample' ? 'Upsample' : 'Resize-10';
  if (mode !== 'nearest' && mode !== 'linear') return `${op} (mode "${mode}")`;
  let nearestMode = 'floor';
  if (mode === 'nearest') {
    // ORT's opset<11 nearest rounds down when enlarging and up when shrinking; Resize-11 needs one mode.
    const scales = r.inits.get(n.input![1]);
    if (!scales || scales.dataType !== TensorType.FLOAT) return `${op} (nearest mode with scales computed at run time)`;
    const s = readFloatInitializer(scales);
    if (s.every((v) => v >= 1)) nearestMode = 'floor';
    else if (s.every((v) => v <= 1)) nearestMode = 'ceil';
    else return `${op} (nearest mode, enlarging some axes and shrinking others)`;
  }
  const enc = (v: string) => new TextEncoder().encode(v);
  const attribute: Attribute[] = [
    { name: 'mode', type: A.STRING, s: enc(mode) },
    { name: 'coordinate_transformation_mode', type: A.STRING, s: enc('asymmetric') },
    ...(mode === 'nearest' ? [{ name: 'nearest_mode', type: A.STRING, s: enc(nearestMode) }] : []),
  ];
  // Resize-11's roi is a required input (optional only from opset 13): an empty tensor, read by no mode used here.
  const roi = r.fresh(n.name || n.output![0], 'roi');
  r.inits.set(roi, initializer(roi, [0], new Float32Array(0)));
  return { ...n, opType: 'Resize', input: [n.input![0], roi, n.input![1]], attribute };
}

/**
 * Upgrades a model's default-domain opset from 9 or 10 to `target` (11): converts the ops whose
 * signature changed (Clip, Slice, Pad, TopK, Upsample, Resize, Dropout, Scatter) and reports, by
 * op, what it cannot convert. A model already at `target` or later is returned as is.
 */
export function upgradeOpset(source: ModelProto, target = 11): UpgradeResult {
  const from = defaultOpset(source);
  if (from >= target) return { ok: true, model: source, from, converted: {} };
  if (target !== 11) return { ok: false, from, reason: `upgrading to opset ${target} is not supported (only to 11)` };
  if (from < 9) return { ok: false, from, reason: `opset ${from} is too old to upgrade (from 9 or 10 only)` };
  const model = cloneModel(source);
  const g = model.graph!;
  const nodes = g.node ?? [];
  const names = new Set<string>([...nodes.flatMap((n) => [...(n.output ?? []), ...(n.input ?? [])]), ...(g.initializer ?? []).map((t) => t.name!), ...(g.input ?? []).map((i) => i.name!)]);
  const r: Rewrite = {
    inits: new Map((g.initializer ?? []).map((t) => [t.name!, t])),
    used: consumers(nodes),
    outputs: new Set((g.output ?? []).map((o) => o.name!)),
    fresh: (base, suffix) => {
      let name = `${base}_${suffix}`;
      for (let i = 1; names.has(name); i++) name = `${base}_${suffix}_${i}`;
      names.add(name);
      return name;
    },
  };
  const blocked = new Map<string, number>();
  const converted: Record<string, number> = {};
  const out: NodeProto[] = [];
  for (const n of nodes) {
    const defaultDomain = !n.domain || n.domain === 'ai.onnx';
    if (defaultDomain && SUBGRAPH_OPS.has(n.opType!)) {
      blocked.set(`${n.opType} (subgraphs are not upgraded)`, (blocked.get(`${n.opType} (subgraphs are not upgraded)`) ?? 0) + 1);
      continue;
    }
    if (!defaultDomain || !CHANGED.has(n.opType!)) { out.push(n); continue; }
    const res = converters[n.opType!](n, from, r);
    if (typeof res === 'string') blocked.set(res, (blocked.get(res) ?? 0) + 1);
    else {
      if (res !== n) converted[n.opType!] = (converted[n.opType!] ?? 0) + 1;
      out.push(res);
    }
  }
  if (blocked.size > 0) {
    const what = [...blocked].map(([op, count]) => (count > 1 ? `${count} x ${op}` : op)).join(', ');
    return { ok: false, from, reason: `opset ${from} cannot be upgraded to ${target}: ${what}` };
  }
  g.node = out as typeof g.node;
  g.initializer = [...r.inits.values()] as typeof g.initializer;
  model.opsetImport = [...(model.opsetImport ?? []).filter((o) => o.domain), { domain: '', version: target }] as typeof model.opsetImport;
  if (Number(model.irVersion ?? 0) < 6) model.irVersion = 6; // opset 11 needs IR version 6
  return { ok: true, model, from, converted };
}
