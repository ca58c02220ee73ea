// Reads, writes and builds ONNX protobuf graphs (onnx-proto over protobufjs); no ONNX Runtime here.
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

export const TensorType = onnx.TensorProto.DataType;

/** ONNX element type numbers for the dtypes this project carries on the wire. */
export const onnxElemType = {
  float32: TensorType.FLOAT,
  uint8: TensorType.UINT8,
  int8: TensorType.INT8,
  int32: TensorType.INT32,
  int64: TensorType.INT64,
  float64: TensorType.DOUBLE,
} as const;

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function encodeModel(model: ModelProto | onnxProto.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** A tensor initializer stored as little-endian raw bytes (what ONNX Runtime reads fastest). */
export function initializer(
  name: string,
  dims: readonly number[],
  data: Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array,
): TensorProto {
  const dataType =
    data instanceof Float32Array ? TensorType.FLOAT
    : data instanceof Int8Array ? TensorType.INT8
    : data instanceof Uint8Array ? TensorType.UINT8
    : data instanceof Int32Array ? TensorType.INT32
    : TensorType.INT64;
  const rawData = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return { name, dims: [...dims], dataType, rawData };
}

export function int64Initializer(name: string, values: readonly number[]): TensorProto {
  return initializer(name, [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
}

type AttrValue = number | number[] | string | { float: number };

export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attrs: Record<string, AttrValue> = {},
  name?: string,
): NodeProto {
  const attribute = Object.entries(attrs).map(([key, v]) => {
    const A = onnx.AttributeProto.AttributeType;
    if (typeof v === 'string') return { name: key, type: A.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name: key, type: A.INTS, ints: v };
    if (typeof v === 'object') return { name: key, type: A.FLOAT, f: v.float };
    return { name: key, type: A.INT, i: v };
  });
  return { opType, input: inputs, output: outputs, attribute, name: name ?? `${opType}_${outputs[0]}` };
}

/** A tensor value description; a string dim is symbolic (the batch dimension). */
export function valueInfo(name: string, elemType: number, dims: readonly (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export interface GraphSpec {
  name: string;
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  nodes: NodeProto[];
  initializers: TensorProto[];
  opset?: number;
  docString?: string;
}

export function buildModel(spec: GraphSpec): ModelProto {
  return onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'infaas-nats',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }],
    docString: spec.docString ?? '',
    graph: {
      name: spec.name,
      input: spec.inputs,
      output: spec.outputs,
      node: spec.nodes,
      initializer: spec.initializers,
    },
  });
}

/** Reads an initializer's values as float32, whichever way the file stored them. */
export function readFloatInitializer(t: TensorProto): Float32Array {
  if (t.dataType !== TensorType.FLOAT) throw new Error(`initializer ${t.name} is not float32`);
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData); // raw bytes may sit at an unaligned offset
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => Number(d));
}

const ELEMENT_BYTES: Record<number, number> = {
  [TensorType.FLOAT]: 4, [TensorType.UINT8]: 1, [TensorType.INT8]: 1, [TensorType.INT32]: 4,
  [TensorType.INT64]: 8, [TensorType.DOUBLE]: 8, [TensorType.FLOAT16]: 2,
};

/** Bytes of all initializers (the weights a session must keep resident). */
export function initializerBytes(model: ModelProto): number {
  let total = 0;
  for (const t of model.graph?.initializer ?? []) {
    const count = dimsOf(t).reduce((a, b) => a * b, 1);
    total += t.rawData && t.rawData.length > 0 ? t.rawData.length : count * (ELEMENT_BYTES[t.dataType ?? 0] ?? 4);
  }
  return total;
}
