// ONNX Runtime sessions for variants, and the model signature read from the ONNX file itself.
import ort from 'onnxruntime-node';
import type { DType, TensorSpec } from '../../schemas/tensor.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { decodeModel, onnxElemType, type ModelProto } from './onnx-graph.js';

export { ort };

export interface SessionConfig {
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  intraOpThreads: number;
  executionProvider: string;
}

export async function createSession(bytes: Uint8Array, config: SessionConfig): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: config.graphOptimizationLevel,
    intraOpNumThreads: config.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    executionProviders: [config.executionProvider],
  });
}

/** Execution providers this process can create sessions with (CPU always; others if bundled). */
export function availableProviders(): string[] {
  return ort.listSupportedBackends().filter((b) => b.bundled && (b.name === 'cpu' || b.name === 'cuda')).map((b) => b.name);
}

const DTYPE_OF = new Map<number, DType>(Object.entries(onnxElemType).map(([k, v]) => [v, k as DType]));

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  opset: number;
  /** Each tensor's symbolic dimension names as the file gives them (null where a dim is fixed or unnamed). */
  dimNames: Record<string, (string | null)[]>;
}

/** Parses an ONNX file; an unreadable file is MODEL_LOAD_FAILED. */
export function parseModel(bytes: Uint8Array): ModelProto {
  try {
    const m = decodeModel(bytes);
    if (!m.graph) throw new Error('the file has no graph');
    return m;
  } catch (err) {
    throw new InfaasError(ErrorCode.ModelLoadFailed, `not an ONNX model: ${(err as Error).message}`);
  }
}

/** Graph inputs (less initializers) and outputs with dtypes and shapes; symbolic dims become null. */
export function modelSignature(model: ModelProto): ModelSignature {
  const g = model.graph!;
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const dimNames: Record<string, (string | null)[]> = {};
  const spec = (v: NonNullable<typeof g.input>[number]): TensorSpec => {
    const tt = v.type?.tensorType;
    const dtype = DTYPE_OF.get(tt?.elemType ?? -1);
    if (!tt || !dtype) throw new InfaasError(ErrorCode.SignatureMismatch, `tensor "${v.name}" has an element type this system does not carry`);
    const dims = tt.shape?.dim ?? [];
    const shape = dims.map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null));
    dimNames[v.name!] = dims.map((d, i) => (shape[i] === null && d.dimParam ? d.dimParam : null));
    return { name: v.name!, dtype, shape };
  };
  return {
    inputs: (g.input ?? []).filter((v) => !inits.has(v.name)).map(spec),
    outputs: (g.output ?? []).map(spec),
    opset: Number(model.opsetImport?.find((o) => !o.domain)?.version ?? 0),
    dimNames,
  };
}

/** Where a declared signature disagrees with the file; an empty list means they match. */
export function signatureMismatches(declared: TensorSpec[], actual: TensorSpec[], kind: 'input' | 'output'): string[] {
  const problems: string[] = [];
  const byName = new Map(actual.map((t) => [t.name, t]));
  for (const d of declared) {
    const a = byName.get(d.name);
    if (!a) { problems.push(`${kind} "${d.name}" is not in the model (it has: ${actual.map((t) => t.name).join(', ')})`); continue; }
    if (a.dtype !== d.dtype) problems.push(`${kind} "${d.name}" is ${a.dtype} in the model, declared ${d.dtype}`);
    const same = a.shape.length === d.shape.length && a.shape.every((v, i) => v === null || d.shape[i] === null || v === d.shape[i]);
    const fmt = (s: (number | null)[]) => `[${s.map((v) => v ?? '?').join(',')}]`;
    if (!same) problems.push(`${kind} "${d.name}" has shape ${fmt(a.shape)} in the model, declared ${fmt(d.shape)}`);
  }
  for (const a of actual) if (!declared.some((d) => d.name === a.name)) problems.push(`model ${kind} "${a.name}" is not declared`);
  return problems;
}
