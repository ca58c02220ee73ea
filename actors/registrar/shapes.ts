// Pure: the input sizes a model is profiled at. A model whose inputs have dynamic dimensions besides
// the batch (an image's height and width) cannot be profiled at "size 1" honestly: the sizes come
// from the registration, or from the shapes of its validation samples, or the registration is refused.
import type { ProfileShape } from '../../schemas/registry.js';
import type { TensorSpec } from '../../schemas/tensor.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { batchAxisOf } from '../../runtime/onnx/batch-axes.js';
import { sampleElements } from '../instance/latency.js';

/** At most this many sizes are profiled (each is a full batch curve per variant group). */
export const MAX_PROFILE_SHAPES = 4;

const fmt = (s: readonly (number | null)[]) => `[${s.map((d) => d ?? '?').join(',')}]`;


/** Dimensions of an input that are dynamic and not its batch axis. */
export function dynamicSizeDims(spec: TensorSpec): number[] {
  const axis = batchAxisOf(spec);
  return spec.shape.flatMap((d, i) => (d === null && i !== axis ? [i] : []));
}

/** Input elements of one sample at a shape (batch axis excluded), summed over the inputs: the measure profiles' sizes are keyed by. */
export function shapeElements(shape: ProfileShape, inputs: TensorSpec[]): number {
  return sampleElements(Object.fromEntries(Object.entries(shape).map(([name, dims]) => [name, { shape: dims }])), inputs);
}

function bad(message: string, details?: Record<string, unknown>): InfaasError {
  return new InfaasError(ErrorCode.BadRequest, message, details);
}

/** One given size completed with the inputs whose shapes are fixed, checked against the specs. */
function completeShape(given: ProfileShape, inputs: TensorSpec[], index: number): ProfileShape {
  const byName = new Map(inputs.map((s) => [s.name, s]));
  for (const name of Object.keys(given)) {
    if (!byName.has(name)) throw bad(`shape ${index + 1} names "${name}", which is not a model input (it takes ${inputs.map((s) => s.name).join(', ')})`);
  }
  const out: ProfileShape = {};
  for (const spec of inputs) {
    const axis = batchAxisOf(spec);
    const dims = given[spec.name];
    if (!dims) {
      if (dynamicSizeDims(spec).length > 0) {
        throw bad(`shape ${index + 1} does not give input "${spec.name}" ${fmt(spec.shape)}, which has dynamic sizes`);
      }
      out[spec.name] = spec.shape.map((d, i) => (i === axis ? 1 : d!));
      continue;
    }
    if (dims.length !== spec.shape.length) {
      throw bad(`shape ${index + 1} gives input "${spec.name}" ${dims.length} dimensions ${fmt(dims)}; it has ${spec.shape.length} ${fmt(spec.shape)}`);
    }
    spec.shape.forEach((want, i) => {
      if (i === axis) return;
      if (want !== null && dims[i] !== want) {
        throw bad(`shape ${index + 1} gives input "${spec.name}" size ${dims[i]} at dim ${i}; the model fixes it at ${want}`);
      }
    });
    // One sample: the batch axis is 1 whatever was written there.
    out[spec.name] = dims.map((d, i) => (i === axis ? 1 : d));
  }
  return out;
}

function sameShape(a: ProfileShape, b: ProfileShape): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] && a[k].length === b[k].length && a[k].every((d, i) => d === b[k][i]));
}

/** Distinct shapes by ascending elements; more than `max` keep the smallest, the largest and evenly spaced ones between. */
export function pickShapes(shapes: ProfileShape[], inputs: TensorSpec[], max = MAX_PROFILE_SHAPES): ProfileShape[] {
  const distinct: ProfileShape[] = [];
  for (const s of shapes) if (!distinct.some((d) => sameShape(d, s))) distinct.push(s);
  distinct.sort((a, b) => shapeElements(a, inputs) - shapeElements(b, inputs));
  if (distinct.length <= max) return distinct;
  const picked = new Set<number>();
  for (let k = 0; k < max; k++) picked.add(Math.round((k * (distinct.length - 1)) / (max - 1)));
  return [...picked].sort((a, b) => a - b).map((i) => distinct[i]);
}

/**
 * The sizes to profile at: undefined when every input's shape is fixed besides the batch; else the
 * registration's `shapes`, or the distinct sample shapes of the validation set, or SHAPES_REQUIRED
 * naming the dynamic dimensions (with their names from the file, when it has them).
 */
export function resolveProfileShapes(
  inputs: TensorSpec[],
  given: ProfileShape[] | undefined,
  fromValidation: ProfileShape[] | undefined,
  dimNames: Record<string, (string | null)[]> = {},
): ProfileShape[] | undefined {
  const dynamic = inputs.filter((s) => dynamicSizeDims(s).length > 0);
  if (given && given.length > 0) {
    const shapes = given.map((g, i) => completeShape(g, inputs, i));
    return dynamic.length > 0 ? pickShapes(shapes, inputs, given.length) : undefined;
  }
  if (dynamic.length === 0) return undefined;
  if (fromValidation && fromValidation.length > 0) {
    return pickShapes(fromValidation.map((g, i) => completeShape(g, inputs, i)), inputs);
  }
  const what = dynamic.map((s) => {
    const dims = dynamicSizeDims(s);
    const names = dims.map((i) => dimNames[s.name]?.[i]).filter((n): n is string => Boolean(n));
    return `"${s.name}" ${fmt(s.shape)} (dims ${dims.join(', ')}${names.length > 0 ? `: ${names.join(', ')}` : ''})`;
  });
  const example = dynamic[0];
  const exampleDims = example.shape.map((d, i) => (i === batchAxisOf(example) ? 1 : d ?? 640)).join('x');
  throw new InfaasError(
    ErrorCode.ShapesRequired,
    `input ${what.join(' and ')} has dynamic sizes besides the batch, and nothing says what sizes to profile at: give them ` +
      `(infaas register --shape ${example.name}=${exampleDims}, repeatable for several sizes; "shapes" in the request) or a validation set whose samples fix them`,
    { inputs: dynamic.map((s) => ({ name: s.name, shape: s.shape, dynamic: dynamicSizeDims(s) })) },
  );
}
