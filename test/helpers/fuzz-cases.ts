// What the fuzz test sends: one seeded case per call, aimed at a control or data subject, built
// from a valid request and then damaged (values, encoding, bytes, headers). Valid-looking requests
// that would legitimately stop the system (a drain of the real worker, an unload or unregister of
// the real model) are made invalid instead.
import type { TSchema } from '@sinclair/typebox';
import { GenerateRequest, NameRequest } from '../../schemas/registry.js';
import { EmptyRequest, LoadRequest, UnloadRequest } from '../../schemas/worker.js';
import { isValid } from '../../schemas/validate.js';
import { headerNames, subjects } from '../../subjects/index.js';
import {
  headerBlock, headerDecodeFailure, jsonLoose, mutateBytes, mutateHeaders, mutateValue, packLoose, type HeaderLine, type Rng,
} from './fuzz-mutate.js';

export interface FuzzTarget { model: string; task: string; variants: string[]; workerId: string }

export interface FuzzCase {
  target: string;
  subject: string;
  /** Sent as a request (a reply is owed) or published. */
  request: boolean;
  plane: 'data' | 'control';
  headers?: Uint8Array;
  data: Uint8Array;
  /** What was done to it, for the report of a failure. */
  mutations: string[];
  /** Set when nats.js cannot decode the header block (see headerDecodeFailure). */
  headerFailure?: { breaksReader: boolean };
}

type Kind = { name: string; weight: number; plane: 'data' | 'control'; subject: (t: FuzzTarget) => string; base: (r: Rng, t: FuzzTarget) => unknown };

const image = (rows = 1) => ({ dtype: 'float32', shape: [rows, 1, 28, 28], data: new Uint8Array(rows * 784 * 4).fill(0x3e) });
const slo = (r: Rng) => ({ latencyMs: r.pick([50, 1000, 5000]), ...(r.chance(0.5) ? { minAccuracy: r.pick([0, 0.5, 0.85]) } : {}) });

const KINDS: Kind[] = [
  {
    name: 'query', weight: 30, plane: 'data', subject: () => subjects.query,
    base: (r, t) => ({ id: `fz-${r.int(1e6)}`, ...r.pick([{ task: t.task }, { model: t.model }, { variant: r.pick(t.variants) }]), inputs: { image: image(r.pick([1, 1, 2])) }, slo: slo(r) }),
  },
  {
    name: 'infer', weight: 25, plane: 'data', subject: (t) => subjects.worker.infer(t.workerId),
    base: (r, t) => ({ id: `fz-${r.int(1e6)}`, variant: r.pick(t.variants), inputs: { image: image() } }),
  },
  { name: 'register', weight: 6, plane: 'control', subject: () => subjects.registry.register, base: (r, t) => ({
    name: `fz-${r.int(1000)}`, task: t.task, dataset: 'fuzz', framework: 'onnx', object: `uploads/fz-${r.int(1000)}`,
    inputs: [{ name: 'image', dtype: 'float32', shape: [null, 1, 28, 28] }], outputs: [{ name: 'logits', dtype: 'float32', shape: [null, 10] }],
    submitter: 'fuzz', declaredAccuracy: 0.9,
  }) },
  { name: 'models', weight: 5, plane: 'control', subject: () => subjects.registry.models, base: (r, t) => (r.chance(0.5) ? {} : { task: t.task }) },
  { name: 'info', weight: 5, plane: 'control', subject: () => subjects.registry.info, base: (r, t) => ({ name: r.chance(0.5) ? t.model : 'fz-none' }) },
  { name: 'unregister', weight: 5, plane: 'control', subject: () => subjects.registry.unregister, base: () => ({ name: 'fz-none' }) },
  { name: 'generate', weight: 5, plane: 'control', subject: () => subjects.profiler.generate, base: () => ({ model: 'fz-none' }) },
  { name: 'load', weight: 5, plane: 'control', subject: (t) => subjects.worker.load(t.workerId), base: (r) => ({ variant: 'fz-none.v1', ...(r.chance(0.5) ? { noWait: true } : {}) }) },
  { name: 'unload', weight: 5, plane: 'control', subject: (t) => subjects.worker.unload(t.workerId), base: (r) => (r.chance(0.5) ? { variant: 'fz-none.v1' } : { instance: 'fz-none' }) },
  { name: 'instances', weight: 4, plane: 'control', subject: (t) => subjects.worker.instances(t.workerId), base: () => ({}) },
  { name: 'drain', weight: 5, plane: 'control', subject: (t) => subjects.worker.drain(t.workerId), base: () => ({}) },
];
const TOTAL_WEIGHT = KINDS.reduce((a, k) => a + k.weight, 0);

const textDecoder = new TextDecoder();

/** The control endpoints' own reading of a body (runtime/bus/service.ts): empty is `{}`. */
function controlBody(data: Uint8Array): unknown {
  if (data.length === 0) return {};
  try { return JSON.parse(textDecoder.decode(data)); } catch { return undefined; }
}

/** Would this control request, as the endpoint reads it, drain, unload or remove the real thing? */
function stopsTheSystem(kind: string, body: unknown, t: FuzzTarget): boolean {
  const valid = <S extends TSchema>(s: S) => isValid(s, body);
  const b = body as Record<string, unknown>;
  switch (kind) {
    case 'drain': return valid(EmptyRequest);
    case 'unregister': return valid(NameRequest) && b.name === t.model;
    case 'generate': return valid(GenerateRequest) && b.model === t.model;
    case 'load': return valid(LoadRequest) && t.variants.includes(b.variant as string);
    case 'unload': return valid(UnloadRequest) && t.variants.includes(b.variant as string);
    default: return false;
  }
}

function dataHeaders(r: Rng, t: FuzzTarget, json: boolean): HeaderLine[] {
  const now = Date.now();
  const lines: HeaderLine[] = [];
  if (json || r.chance(0.3)) lines.push({ key: 'Content-Type', value: json ? 'application/json' : r.pick(['application/msgpack', 'text/plain', 'application/jsonx']) });
  if (r.chance(0.7)) lines.push({ key: headerNames.deadline, value: String(r.chance(0.8) ? now + 2000 : r.pick([0, -1, now - 1000, now + 1e12, 1e308, 'NaN', '1e309', ' 5 '])) });
  if (r.chance(0.3)) lines.push({ key: headerNames.start, value: String(r.chance(0.7) ? now : r.pick([0, -5, 'x', 1e20])) });
  if (r.chance(0.2)) lines.push({ key: headerNames.variant, value: r.chance(0.6) ? r.pick(t.variants) : r.pick(['a', 'a.b.c', 'fz.none', '..']) });
  if (r.chance(0.1)) lines.push({ key: headerNames.load, value: '1' });
  if (r.chance(0.1)) lines.push({ key: headerNames.pinned, value: '1' });
  if (r.chance(0.1)) lines.push({ key: headerNames.note, value: 'n'.repeat(r.pick([1, 2000])) });
  return lines;
}

/** The next case of a seeded run. */
export function nextCase(r: Rng, t: FuzzTarget): FuzzCase {
  let roll = r.int(TOTAL_WEIGHT);
  const kind = KINDS.find((k) => (roll -= k.weight) < 0)!;
  const mutations: string[] = [];
  let value = kind.base(r, t);
  if (r.chance(0.75)) { value = mutateValue(r, value); mutations.push('value'); }
  const json = kind.plane === 'control' || r.chance(0.3);
  let data = json ? jsonLoose(value) : packLoose(value);
  if (r.chance(0.3)) { data = mutateBytes(r, data); mutations.push('bytes'); }
  if (kind.plane === 'control' && stopsTheSystem(kind.name, controlBody(data), t)) {
    data = Uint8Array.from([0x7e, ...data]); // '~': not JSON, so MALFORMED_MESSAGE, never the real thing
    mutations.push('made-invalid');
  }
  let lines = kind.plane === 'data' ? dataHeaders(r, t, json) : [];
  let status = 'NATS/1.0';
  if (r.chance(0.4)) { ({ lines, status } = mutateHeaders(r, lines)); mutations.push('headers'); }
  const headers = lines.length > 0 || status !== 'NATS/1.0' ? headerBlock(lines, status) : undefined;
  const failure = headers ? headerDecodeFailure(headers) : { fails: false, breaksReader: false };
  return {
    target: kind.name, subject: kind.subject(t), request: r.chance(0.9), plane: kind.plane, data, mutations,
    ...(headers ? { headers } : {}), ...(failure.fails ? { headerFailure: { breaksReader: failure.breaksReader } } : {}),
  };
}

/** A case as text for a failure report: subject, headers and body, escaped. */
export function describeCase(c: FuzzCase): string {
  const esc = (b: Uint8Array, max: number) => JSON.stringify(Buffer.from(b.subarray(0, max)).toString('latin1')) + (b.length > max ? `...(${b.length} bytes)` : '');
  return `${c.target} ${c.subject} [${c.mutations.join(',') || 'valid'}] headers=${c.headers ? esc(c.headers, 300) : '-'} body=${esc(c.data, 200)}`;
}
