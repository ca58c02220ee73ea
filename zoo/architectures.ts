// The built-in digit-classification family: layer lists shared by the trainer and the ONNX exporter.
import {
  buildModel, initializer, int64Initializer, node, onnxElemType, valueInfo,
  type ModelProto, type NodeProto, type TensorProto,
} from '../runtime/onnx/onnx-graph.js';

export type Layer =
  | { kind: 'flatten' }
  | { kind: 'dense'; units: number }
  | { kind: 'relu' }
  | { kind: 'conv'; filters: number; kernel: number }
  | { kind: 'maxpool' };

export interface Architecture {
  name: string;
  description: string;
  layers: Layer[];
  /** One entry per epoch: Adam learning rate, and how many (shuffled) examples it sees (all if absent). */
  epochs: { learningRate: number; samples?: number }[];
  /** Helper threads for training (data-parallel); default: the main thread alone. */
  threads?: number;
}

export const IMAGE_SHAPE = [1, 28, 28] as const;
export const CLASSES = 10;

function repeat<T>(n: number, value: T): T[] {
  return Array.from({ length: n }, () => value);
}

export const architectures: Architecture[] = [
  {
    name: 'mlp-small',
    description: 'one hidden layer of 16 units',
    layers: [{ kind: 'flatten' }, { kind: 'dense', units: 16 }, { kind: 'relu' }, { kind: 'dense', units: CLASSES }],
    epochs: repeat(4, { learningRate: 0.002 }),
  },
  {
    name: 'mlp-wide',
    description: 'two hidden layers of 128 and 64 units',
    layers: [
      { kind: 'flatten' }, { kind: 'dense', units: 128 }, { kind: 'relu' },
      { kind: 'dense', units: 64 }, { kind: 'relu' }, { kind: 'dense', units: CLASSES },
    ],
    epochs: repeat(6, { learningRate: 0.001 }),
  },
  {
    name: 'cnn-small',
    description: 'one 3x3 convolution with 8 filters, max-pool, dense',
    layers: [
      { kind: 'conv', filters: 8, kernel: 3 }, { kind: 'relu' }, { kind: 'maxpool' },
      { kind: 'flatten' }, { kind: 'dense', units: CLASSES },
    ],
    epochs: repeat(4, { learningRate: 0.002 }),
  },
  {
    name: 'cnn-wide',
    description: 'three 3x3 convolutions (64, 128, 192 filters) with two max-pools, dense',
    layers: [
      { kind: 'conv', filters: 64, kernel: 3 }, { kind: 'relu' },
      { kind: 'conv', filters: 128, kernel: 3 }, { kind: 'relu' }, { kind: 'maxpool' },
      { kind: 'conv', filters: 192, kernel: 3 }, { kind: 'relu' }, { kind: 'maxpool' },
      { kind: 'flatten' }, { kind: 'dense', units: CLASSES },
    ],
    // Two short epochs, then a full one at a lower rate: ~53 minutes on 2 cores (65M multiply-adds per image).
    epochs: [{ learningRate: 0.001, samples: 3000 }, { learningRate: 0.001, samples: 3000 }, { learningRate: 0.0003 }],
    threads: 2,
  },
];

/** Shape [c, h, w] or [features] after each layer, starting from one image. */
export function layerShapes(layers: Layer[]): number[][] {
  const shapes: number[][] = [[...IMAGE_SHAPE]];
  let cur: number[] = [...IMAGE_SHAPE];
  for (const l of layers) {
    if (l.kind === 'flatten') cur = [cur.reduce((a, b) => a * b, 1)];
    else if (l.kind === 'dense') cur = [l.units];
    else if (l.kind === 'conv') cur = [l.filters, cur[1] - l.kernel + 1, cur[2] - l.kernel + 1];
    else if (l.kind === 'maxpool') cur = [cur[0], Math.floor(cur[1] / 2), Math.floor(cur[2] / 2)];
    shapes.push(cur);
  }
  return shapes;
}

/** Weight tensors per parameterised layer: W then b. Dense W is [in, out]; conv W is [out, in, k, k]. */
export interface LayerParams { w: Float32Array; b: Float32Array; wDims: number[] }

export function paramShapes(layers: Layer[]): (number[] | null)[] {
  const shapes = layerShapes(layers);
  return layers.map((l, i) => {
    const input = shapes[i];
    if (l.kind === 'dense') return [input[0], l.units];
    if (l.kind === 'conv') return [l.filters, input[0], l.kernel, l.kernel];
    return null;
  });
}

export const INPUT_NAME = 'image';
export const OUTPUT_NAME = 'logits';

/** Exports trained parameters as an ONNX graph: image float32 [N,1,28,28] -> logits float32 [N,10]. */
export function exportOnnx(arch: Architecture, params: (LayerParams | null)[]): ModelProto {
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let cur = INPUT_NAME;
  arch.layers.forEach((l, i) => {
    const out = i === arch.layers.length - 1 ? OUTPUT_NAME : `t${i}`;
    const p = params[i];
    if (l.kind === 'flatten') {
      inits.push(int64Initializer(`shape${i}`, [0, -1]));
      nodes.push(node('Reshape', [cur, `shape${i}`], [out]));
    } else if (l.kind === 'relu') {
      nodes.push(node('Relu', [cur], [out]));
    } else if (l.kind === 'maxpool') {
      nodes.push(node('MaxPool', [cur], [out], { kernel_shape: [2, 2], strides: [2, 2] }));
    } else if (l.kind === 'dense' && p) {
      inits.push(initializer(`w${i}`, p.wDims, p.w), initializer(`b${i}`, [p.b.length], p.b));
      nodes.push(node('MatMul', [cur, `w${i}`], [`mm${i}`]), node('Add', [`mm${i}`, `b${i}`], [out]));
    } else if (l.kind === 'conv' && p) {
      inits.push(initializer(`w${i}`, p.wDims, p.w), initializer(`b${i}`, [p.b.length], p.b));
      nodes.push(node('Conv', [cur, `w${i}`, `b${i}`], [out], { kernel_shape: [l.kernel, l.kernel] }));
    }
    cur = out;
  });
  return buildModel({
    name: arch.name,
    docString: `digit-classification: ${arch.description}`,
    inputs: [valueInfo(INPUT_NAME, onnxElemType.float32, ['N', ...IMAGE_SHAPE])],
    outputs: [valueInfo(OUTPUT_NAME, onnxElemType.float32, ['N', CLASSES])],
    nodes,
    initializers: inits,
  });
}
