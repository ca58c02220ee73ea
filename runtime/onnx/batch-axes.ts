// Pure: which axis of each input and output carries a model's batch, from what the registration
// declares, the file's dimension names and the export convention; and whether it can be served batched.
import type { TensorSpec } from '../../schemas/tensor.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import type { ModelSignature } from './onnx-session.js';

export interface BatchAxesOverrides {
  /** Registration overrides of the file's specs (replace the signature's list when given); a spec's batchAxis is a declaration. */
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
  /** Declared batch axis per tensor name (null: the tensor has none); wins over a spec's batchAxis. */
  batchAxes?: Record<string, number | null>;
}

export interface ResolvedBatchAxes {
  /** Every spec with an explicit batchAxis (a number or null). */
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** False: the model must be served one query per run; `reason` says why. */
  batched: boolean;
  reason?: string;
}

/**
 * Dimension names that mean "the batch": any word of the name (split at non-alphanumerics and
 * camelCase humps) that is batch/batches/batchsize, or a whole name that is one of the short
 * conventions (N, B, bs, nbatch, ...), case-insensitive. So "batch", "batch_size", "batchSize",
 * "dynamic_batch", "N" and "bs" are batch names; "num_boxes", "unbatched", "seq", "bsz_x" and
 * "p2o.DynamicDimension.0" are not.
 */
const BATCH_WORDS = new Set(['batch', 'batches', 'batchsize']);
const BATCH_NAMES = new Set(['n', 'b', 'bs', 'bsz', 'nbatch', 'nbatches', 'numbatch', 'batchsize', 'batchdim']);

export function isBatchDimName(name: string): boolean {
  if (BATCH_NAMES.has(name.toLowerCase().replace(/[^a-z0-9]/g, ''))) return true;
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/);
  return words.some((w) => BATCH_WORDS.has(w));
}

/** A spec's batch axis: records written before batch axes existed (batchAxis absent) batch on axis 0, unless scalar. */
export function batchAxisOf(spec: Pick<TensorSpec, 'shape' | 'batchAxis'>): number | null {
  if (spec.batchAxis !== undefined) return spec.batchAxis;
  return spec.shape.length > 0 ? 0 : null;
}

type Kind = 'input' | 'output';
interface Entry { kind: Kind; spec: TensorSpec; names: (string | null)[]; axis?: number | null; how?: 'declared' | 'named' }

const fmt = (shape: readonly (number | null)[]) => `[${shape.map((d) => d ?? '?').join(',')}]`;

/**
 * Every input's and output's batch axis. A declaration (overrides.batchAxes, or an override spec's
 * batchAxis) wins and must name a tensor of the model and a dynamic dimension of it (else
 * BAD_REQUEST / SIGNATURE_MISMATCH saying why). Otherwise the one dimension with a batch name
 * (isBatchDimName, or the name of a declared batch dimension) is the axis. Otherwise, for a model
 * whose established axes are all 0, a tensor whose leading dimension is dynamic (and not named like
 * a dimension the model uses elsewhere for something else) batches on axis 0: the export
 * convention, which is how PaddleOCR's "p2o.DynamicDimension.0" is read. Scalars have none.
 * A tensor of rank >= 1 whose axis none of this establishes is reported with batchAxis null and the
 * model unbatched (batched false, the reason naming it); so is a model with an output that has no
 * batch axis (its value could not be split among a batch's queries) or no input that has one.
 */
export function resolveBatchAxes(sig: ModelSignature, overrides: BatchAxesOverrides = {}): ResolvedBatchAxes {
  const entry = (kind: Kind) => (spec: TensorSpec): Entry => {
    const names = sig.dimNames?.[spec.name];
    return { kind, spec, names: names && names.length === spec.shape.length ? names : spec.shape.map(() => null) };
  };
  const entries = [...(overrides.inputs ?? sig.inputs).map(entry('input')), ...(overrides.outputs ?? sig.outputs).map(entry('output'))];
  applyDeclarations(entries, overrides.batchAxes ?? {});
  const { undecided, named } = applyNames(entries);
  let reason = applyConvention(entries, undecided, named);
  for (const e of entries) {
    if (e.kind === 'output' && e.axis === null) {
      reason ??= `output ${e.spec.name} ${fmt(e.spec.shape)} has no batch axis: its value could not be split among the queries of a batch`;
    }
  }
  if (!entries.some((e) => e.kind === 'input' && e.axis !== null)) reason ??= 'no input has a batch axis';
  const out = (kind: Kind) => entries.filter((e) => e.kind === kind).map((e): TensorSpec => ({
    name: e.spec.name, dtype: e.spec.dtype, shape: [...e.spec.shape], batchAxis: e.axis ?? null,
  }));
  return { inputs: out('input'), outputs: out('output'), batched: reason === undefined, ...(reason !== undefined ? { reason } : {}) };
}

/** Declarations (the batchAxes map first, then override specs' batchAxis), each checked. */
function applyDeclarations(entries: Entry[], batchAxes: Record<string, number | null>): void {
  const byName = new Map(entries.map((e) => [e.spec.name, e]));
  for (const [name, axis] of Object.entries(batchAxes)) {
    const e = byName.get(name);
    if (!e) {
      throw new InfaasError(ErrorCode.BadRequest, `batchAxes names ${name}, which is neither an input nor an output of the model (${[...byName.keys()].join(', ')})`, { tensor: name });
    }
    e.axis = axis;
    e.how = 'declared';
  }
  for (const e of entries) {
    if (e.how === undefined && e.spec.batchAxis !== undefined) { e.axis = e.spec.batchAxis; e.how = 'declared'; }
    if (e.how === 'declared' && e.axis !== null && e.axis !== undefined) checkDeclared(e);
  }
}

/** Axes from dimension names; returns the tensors still undecided and the batch-name test used. */
function applyNames(entries: Entry[]): { undecided: Entry[]; named: (n: string | null) => boolean } {
  // A declared axis's dimension name is a batch name too (PaddleOCR-style names say nothing by themselves).
  const batchNames = new Set<string>();
  for (const e of entries) {
    const n = e.how === 'declared' && e.axis !== null && e.axis !== undefined ? e.names[e.axis] : null;
    if (n) batchNames.add(n);
  }
  const named = (n: string | null) => n !== null && (isBatchDimName(n) || batchNames.has(n));
  const undecided: Entry[] = [];
  for (const e of entries) {
    if (e.how === 'declared') continue;
    if (e.spec.shape.length === 0) { e.axis = null; continue; }
    const hits = e.names.flatMap((n, i) => (named(n) ? [i] : []));
    if (hits.length === 1) { e.axis = hits[0]; e.how = 'named'; } else undecided.push(e);
  }
  return { undecided, named };
}

/** Axis 0 for the undecided tensors where the export convention holds; the reason for the first where it does not. */
function applyConvention(entries: Entry[], undecided: Entry[], named: (n: string | null) => boolean): string | undefined {
  // Names of dimensions known not to be the batch: a leading dim so named is something else.
  const otherNames = new Set<string>();
  for (const e of entries) {
    if (e.how === undefined) continue;
    e.names.forEach((n, i) => { if (n && i !== e.axis) otherNames.add(n); });
  }
  const leadingConvention = entries.every((e) => e.how === undefined || e.axis === null || e.axis === 0);
  let reason: string | undefined;
  for (const e of undecided) {
    const lead = e.names[0];
    const ok = leadingConvention && e.spec.shape[0] === null && !(lead !== null && otherNames.has(lead)) && e.names.filter(named).length === 0;
    e.axis = ok ? 0 : null;
    if (!ok) reason ??= `cannot tell the batch axis of ${e.kind} ${e.spec.name} ${fmt(e.spec.shape)}${whyNot(e, leadingConvention, otherNames, named)}; declare it with batchAxes`;
  }
  return reason;
}

function checkDeclared(e: Entry): void {
  const axis = e.axis!;
  const { name, shape } = e.spec;
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
    throw new InfaasError(ErrorCode.SignatureMismatch,
      `batch axis ${axis} of ${e.kind} ${name} is outside its ${shape.length} dimension${shape.length === 1 ? '' : 's'} ${fmt(shape)}${shape.length === 0 ? ' (a scalar has no batch axis: declare null)' : ''}`,
      { tensor: name, batchAxis: axis, shape });
  }
  if (shape[axis] !== null) {
    throw new InfaasError(ErrorCode.SignatureMismatch,
      `batch axis ${axis} of ${e.kind} ${name} ${fmt(shape)} has the fixed size ${shape[axis]}; a batch axis must be a dynamic dimension`,
      { tensor: name, batchAxis: axis, shape });
  }
}

function whyNot(e: Entry, leadingConvention: boolean, otherNames: Set<string>, named: (n: string | null) => boolean): string {
  if (e.names.filter(named).length > 1) return ': several of its dimensions have batch names';
  if (e.spec.shape[0] !== null) return `: no dimension is named like a batch and its leading dimension is fixed at ${e.spec.shape[0]}`;
  if (!leadingConvention) return ': no dimension is named like a batch, and the model batches other tensors on axes other than 0';
  if (e.names[0] && otherNames.has(e.names[0])) return `: its leading dimension "${e.names[0]}" is not the batch elsewhere in the model`;
  return '';
}

/** What an instance serves with: the specs it checks and splits by, and whether queries may share a run. */
export interface ServingSpecs {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  batchQueries: boolean;
}

/**
 * A model record's specs as an instance uses them. A model registered unbatched (batched false)
 * serves each query whole, as one unit: no tensor is split or counted in rows. Records written
 * before batch axes existed batch on axis 0, and queries share a run only when every output's
 * batch dimension is dynamic (a fixed or absent one could not be split per query).
 */
export function servingSpecs(model: { inputs: TensorSpec[]; outputs: TensorSpec[]; batched?: boolean }): ServingSpecs {
  if (model.batched === false) {
    const whole = (s: TensorSpec): TensorSpec => ({ ...s, batchAxis: null });
    return { inputs: model.inputs.map(whole), outputs: model.outputs.map(whole), batchQueries: false };
  }
  const axisOk = (s: TensorSpec) => { const a = batchAxisOf(s); return a !== null && s.shape[a] === null; };
  const explicit = (s: TensorSpec): TensorSpec => ({ ...s, batchAxis: batchAxisOf(s) });
  return {
    inputs: model.inputs.map(explicit),
    outputs: model.outputs.map(explicit),
    batchQueries: model.outputs.every(axisOk) && model.inputs.some((s) => batchAxisOf(s) !== null),
  };
}

/**
 * A query's rows as an instance of the model will count them (actors/instance/inputs.ts): the size
 * of the first input's batch dimension; 1 when no input has a batch axis. Without specs (a model
 * not known yet), the first input of rank >= 1's dim 0. Malformed queries are the instance's to refuse.
 */
export function queryRows(inputs: Readonly<Record<string, { shape: readonly number[] }>>, specs: readonly TensorSpec[]): number {
  if (specs.length === 0) {
    const first = Object.values(inputs).find((t) => t.shape.length > 0);
    return first ? first.shape[0] : 1;
  }
  for (const s of specs) {
    const axis = batchAxisOf(s);
    const t = inputs[s.name];
    if (axis !== null && t && axis < t.shape.length) return t.shape[axis];
  }
  return 1;
}
