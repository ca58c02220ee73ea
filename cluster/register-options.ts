// Pure: `infaas register`'s flags parsed into the parts of a RegisterRequest the ONNX file cannot say
// (sizes to profile at, batch axes, the accuracy metric). Errors are commander InvalidArgumentErrors.
import { InvalidArgumentError } from 'commander';
import type { Metric, ProfileShape } from '../schemas/registry.js';

/** `--shape x=1x3x640x640` or, for several inputs at one size, `--shape a=1x3x48x320,b=1x4`. */
export function parseShapeOption(text: string): ProfileShape {
  const shape: ProfileShape = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const dims = part.slice(eq + 1).trim();
    if (eq < 1 || !dims) throw new InvalidArgumentError(`expected input=dims such as x=1x3x640x640 (several inputs: a=...,b=...), got "${part}"`);
    const values = dims.split('x').map(Number);
    if (values.some((d) => !Number.isInteger(d) || d < 1)) throw new InvalidArgumentError(`bad dimensions "${dims}" for ${name}: positive integers joined by x`);
    if (shape[name]) throw new InvalidArgumentError(`input ${name} given twice in one --shape`);
    shape[name] = values;
  }
  return shape;
}

/** `--batch-axis h=1` or `--batch-axis scale=none`. */
export function parseBatchAxisOption(text: string, prev: Record<string, number | null> = {}): Record<string, number | null> {
  const [name, axis] = text.split('=');
  if (!name || axis === undefined) throw new InvalidArgumentError(`expected name=axis (a dimension index, or none), got "${text}"`);
  if (axis === 'none') return { ...prev, [name]: null };
  const n = Number(axis);
  if (!Number.isInteger(n) || n < 0 || n > 7) throw new InvalidArgumentError(`batch axis of ${name} must be 0..7 or none, got "${axis}"`);
  return { ...prev, [name]: n };
}

const KINDS = ['top1', 'top5', 'ctc', 'fidelity'] as const;
const AGREEMENTS = ['argmax', 'iou', 'cosine'] as const;

/** `--metric top1 | top5 | ctc | fidelity[:argmax|iou|cosine][@threshold]`. */
export function parseMetricOption(text: string): Metric {
  const m = /^([a-z0-9]+)(?::([a-z]+))?(?:@([0-9.eE+-]+))?$/.exec(text);
  const kind = m?.[1] as Metric['kind'] | undefined;
  if (!m || !kind || !(KINDS as readonly string[]).includes(kind)) {
    throw new InvalidArgumentError(`expected one of ${KINDS.join(', ')}; fidelity takes :${AGREEMENTS.join('|:')} and, with iou, @threshold (e.g. fidelity:iou@0.3)`);
  }
  const metric: Metric = { kind };
  if (m[2] !== undefined) {
    if (kind !== 'fidelity' || !(AGREEMENTS as readonly string[]).includes(m[2])) throw new InvalidArgumentError(`":${m[2]}" applies only to fidelity (${AGREEMENTS.join(', ')})`);
    metric.agreement = m[2] as Metric['agreement'];
  }
  if (m[3] !== undefined) {
    const threshold = Number(m[3]);
    if (metric.agreement !== 'iou' || !Number.isFinite(threshold)) throw new InvalidArgumentError('a threshold (@x) applies only to fidelity:iou');
    metric.threshold = threshold;
  }
  return metric;
}
