// Pure: which queued queries may share one run. Queries batch together only when every input has
// the same sizes besides its batch axis and every axis-less input holds the same bytes.
import type { CheckedInputs, Feed } from './inputs.js';

/** FNV-1a over the bytes: a cheap first test of equality (canShareRun compares the bytes themselves). */
function fnv1a(f: Feed): string {
  const b = new Uint8Array(f.data.buffer, f.data.byteOffset, f.data.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return (h >>> 0).toString(16);
}

/**
 * A query's compatibility key: each input's dtype and sizes with its batch dimension as "*", and
 * for an input without a batch axis its sizes and a hash of its bytes. A query with no batched
 * input at all is "solo": it never shares a run.
 */
export function batchKey(c: Pick<CheckedInputs, 'feeds' | 'axes'>): string {
  const parts: string[] = [];
  let batched = false;
  for (const name of Object.keys(c.feeds).sort()) {
    const f = c.feeds[name];
    const axis = c.axes[name] ?? null;
    if (axis !== null) batched = true;
    const dims = f.dims.map((d, i) => (i === axis ? '*' : String(d))).join(',');
    parts.push(`${name}:${f.dtype}[${dims}]${axis === null ? `=${f.data.byteLength}#${fnv1a(f)}` : ''}`);
  }
  return batched ? parts.join(';') : `solo;${parts.join(';')}`;
}

/** Same dtype, dims and bytes. */
export function sameFeed(a: Feed, b: Feed): boolean {
  if (a.dtype !== b.dtype || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Whether two checked queries may run in one batch (their keys match and their axis-less inputs are byte-identical). */
export function canShareRun(a: CheckedInputs, b: CheckedInputs): boolean {
  if (a.key !== b.key || a.key.startsWith('solo;')) return false;
  for (const [name, axis] of Object.entries(a.axes)) {
    if (axis === null && !sameFeed(a.feeds[name], b.feeds[name])) return false;
  }
  return true;
}

export interface PickOptions {
  /** Rows the batch may take (the max batch, or the AIMD cap). */
  cap: number;
  /** With an adaptive cap: a first query over the cap (within the max batch) runs alone rather than never. */
  maxBatch: number;
  adaptive: boolean;
  /** False: one query per run (a model served unbatched). */
  shareRuns: boolean;
}

/**
 * The next batch: the oldest query, then, in arrival order, the later queries that may share its
 * run while their rows fit the cap (the first compatible one that does not fit ends the batch, so
 * no compatible query is overtaken). Incompatible queries keep their places for a later batch.
 */
export function pickBatch<Q extends { checked: CheckedInputs }>(queue: readonly Q[], o: PickOptions): { batch: Q[]; rest: Q[] } {
  if (queue.length === 0) return { batch: [], rest: [] };
  const first = queue[0];
  const r0 = first.checked.rows;
  if (!(r0 <= o.cap || (o.adaptive && r0 <= o.maxBatch))) return { batch: [], rest: [...queue] };
  const batch = [first];
  const rest: Q[] = [];
  let rows = r0;
  let open = o.shareRuns;
  for (let i = 1; i < queue.length; i++) {
    const q = queue[i];
    if (open && canShareRun(first.checked, q.checked)) {
      if (rows + q.checked.rows <= o.cap) { batch.push(q); rows += q.checked.rows; continue; }
      open = false;
    }
    rest.push(q);
  }
  return { batch, rest };
}
