// Claim check: tensors too big for one message wait in the blobs Object Store bucket and travel as
// references {dtype, shape, ref}; this module decides which, puts them, fetches and deletes them.
import { createHash } from 'node:crypto';
import { headers as natsHeaders, nanos, nuid, type JetStreamClient, type JetStreamManager, type MsgHdrs, type NatsConnection, type ObjectStore } from 'nats';
import { buckets, objects } from '../../subjects/index.js';
import { BYTES_PER_ELEMENT, isTensorRef, type BlobRef, type Tensor, type TensorRef, type WireTensor } from '../../schemas/tensor.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { elementCount, encodeJson, encodePayload, tensorToArray } from './codec.js';

/**
 * A blob outlives its query by far at this age: the query's deadline has passed, its answer was read
 * or nobody will read it. Clients delete what they put and what they read; the TTL takes the rest.
 */
export const BLOB_TTL_MS = 10 * 60_000;

/**
 * The blobs bucket, created if missing (with its TTL). Opened without JetStream's account check
 * ($JS.API.INFO), which a client credential may not call: it may reach this bucket only.
 */
export async function openBlobStore(nc: NatsConnection, options: { replicas?: number } = {}): Promise<BlobStore> {
  const os = await nc.jetstream({ checkAPI: false }).views.os(buckets.blobs, {
    replicas: options.replicas ?? 1, ttl: nanos(BLOB_TTL_MS),
    description: `infaas tensors sent by reference (claim check); dropped ${BLOB_TTL_MS / 60_000} min after they were put`,
  });
  return new BlobStore(nc, os);
}

/**
 * Room a client leaves below the max payload for what a dispatcher adds when it forwards the query
 * untouched: its routing headers (deadline, start, variant, the client's reply subject of up to 512
 * characters, a note of up to 1,000) come to well under this.
 */
export const FORWARD_HEADROOM_BYTES = 4096;
/** Room a worker leaves for an answer's headers (Content-Type only, or the error headers). */
export const ANSWER_HEADROOM_BYTES = 1024;
/** Larger chunks than nats.js's 128 KiB default (a 12 MiB tensor in 12 messages instead of 96), within the max payload. */
const CHUNK_BYTES = 1024 * 1024;

/**
 * The blobs bucket, read and written in the Object Store's own format (chunks on $O.<bucket>.C.<nuid>,
 * then a meta record with a SHA-256 digest on $O.<bucket>.M.<name>), so `nats obj` and nats.js read
 * it, but with Node's native SHA-256 and direct gets: nats.js's put and get hash in JavaScript
 * (~0.45 s per 12 MiB on the 2-core dev VM, against ~0.02 s native), most of what a put or get cost.
 * The rest (list, status, delete, watch) is nats.js's `os`.
 */
export class BlobStore {
  private readonly js: JetStreamClient;
  private jsm?: Promise<JetStreamManager>;
  private readonly stream = `OBJ_${buckets.blobs}`;
  private readonly direct = `$JS.API.DIRECT.GET.OBJ_${buckets.blobs}`;

  constructor(private readonly nc: NatsConnection, readonly os: ObjectStore) {
    this.js = nc.jetstream({ checkAPI: false });
  }

  private manager(): Promise<JetStreamManager> {
    this.jsm ??= this.nc.jetstreamManager({ checkAPI: false });
    return this.jsm;
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    const id = nuid.next();
    const chunkSubject = `$O.${buckets.blobs}.C.${id}`;
    const hash = createHash('sha256');
    const sent: Promise<unknown>[] = [];
    const size = Math.min(CHUNK_BYTES, maxPayloadOf(this.nc) - ANSWER_HEADROOM_BYTES);
    let chunks = 0;
    for (let at = 0; at < bytes.byteLength; at += size) {
      const chunk = bytes.subarray(at, Math.min(at + size, bytes.byteLength));
      hash.update(chunk);
      sent.push(this.js.publish(chunkSubject, chunk));
      chunks++;
    }
    try {
      await Promise.all(sent);
    } catch (err) {
      await (await this.manager()).streams.purge(this.stream, { filter: chunkSubject }).catch(() => undefined);
      throw err;
    }
    const info = {
      name, description: '', options: { max_chunk_size: size }, bucket: buckets.blobs, nuid: id, size: bytes.byteLength, chunks,
      mtime: new Date().toISOString(), digest: `SHA-256=${base64UrlPadded(hash.digest())}`, deleted: false,
    };
    const h = natsHeaders();
    h.set('Nats-Rollup', 'sub');
    await this.js.publish(metaSubject(name), encodeJson(info), { headers: h });
  }

  /** The blob's bytes; null when there is none of that name (never put, deleted, expired). */
  async get(name: string): Promise<Uint8Array | null> {
    const meta = await this.directGet(`${this.direct}.${metaSubject(name)}`);
    if (!meta) return null;
    const info = JSON.parse(new TextDecoder().decode(meta.data)) as { nuid: string; size: number; chunks: number; digest: string; deleted?: boolean };
    if (info.deleted) return null;
    const subject = `$O.${buckets.blobs}.C.${info.nuid}`;
    const next = (seq: number) => this.directGet(this.direct, encodeJson({ seq, next_by_subj: subject }));
    const parts: { seq: number; data: Uint8Array }[] = [];
    const first = info.chunks > 0 ? await next(1) : undefined;
    if (first) parts.push(first);
    if (first && info.chunks > 1) {
      // One writer publishes a blob's chunks in a row, so they mostly sit at consecutive sequences:
      // ask for them all at once; where another writer's messages came between, chain the rest.
      const guesses = await Promise.all(Array.from({ length: info.chunks - 1 }, (_, i) => next(first.seq + i + 1)));
      for (const g of guesses) {
        if (!g || g.seq <= parts[parts.length - 1].seq) break;
        parts.push(g);
      }
      while (parts.length < info.chunks) {
        const g = await next(parts[parts.length - 1].seq + 1);
        if (!g) break;
        parts.push(g);
      }
    }
    const out = new Uint8Array(info.size);
    const hash = createHash('sha256');
    let at = 0;
    for (const p of parts) {
      if (at + p.data.byteLength > out.byteLength) { at = -1; break; }
      out.set(p.data, at);
      hash.update(p.data);
      at += p.data.byteLength;
    }
    if (at !== info.size || `SHA-256=${base64UrlPadded(hash.digest())}` !== info.digest) {
      throw new InfaasError(ErrorCode.Internal, `blob "${name}" in bucket ${buckets.blobs} is damaged or was replaced while read (${parts.length} of ${info.chunks} chunks)`);
    }
    return out;
  }

  /** A JetStream direct get: the message and its sequence, or undefined when there is none (404). */
  private async directGet(subject: string, body: Uint8Array = new Uint8Array(0)): Promise<{ seq: number; data: Uint8Array } | undefined> {
    const m = await this.nc.request(subject, body, { timeout: 10_000 });
    const code = m.headers?.code ?? 0;
    if (code === 404) return undefined;
    if (code >= 300) throw new InfaasError(ErrorCode.Internal, `direct get from ${this.stream} failed: ${code} ${m.headers?.description ?? ''}`);
    return { seq: Number(m.headers?.get('Nats-Sequence')), data: m.data };
  }

  /** Best effort (one already gone, or a bus going away, is no error: the TTL is the backstop). */
  async delete(refs: readonly BlobRef[]): Promise<void> {
    await Promise.all(refs.map((r) => this.os.delete(r.object).catch(() => undefined)));
  }
}

function base64UrlPadded(b: Uint8Array | string): string {
  return Buffer.from(b).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

function metaSubject(name: string): string {
  return `$O.${buckets.blobs}.M.${base64UrlPadded(name)}`;
}

/** Bytes a message occupies of the max payload: its data and its headers as nats.js writes them. */
export function messageBytes(data: Uint8Array, h?: MsgHdrs): number {
  if (!h) return data.length;
  let n = 'NATS/1.0\r\n\r\n'.length;
  for (const [k, vs] of h) for (const v of vs) n += k.length + 2 + v.length + 2;
  return data.length + n;
}

/** The max payload the connection's server announced (1 MiB, nats-server's default, if unknown). */
export function maxPayloadOf(nc: { info?: { max_payload: number } }): number {
  return nc.info?.max_payload ?? 1024 * 1024;
}

export function hasRefs(named: Record<string, WireTensor>): boolean {
  for (const t of Object.values(named)) if (isTensorRef(t)) return true;
  return false;
}

/** Bytes waiting in the blobs bucket for these tensors (0 when all are inline). */
export function referencedBytes(named: Record<string, WireTensor>): number {
  let n = 0;
  // for-in: the dispatcher asks this of every query, most with no reference at all.
  for (const k in named) { const t = named[k]; if (isTensorRef(t)) n += t.ref.bytes; }
  return n;
}

const MIB = 1024 * 1024;

/**
 * Until a worker has measured its fetches: milliseconds per MiB fetched from the blobs bucket. The
 * median of ten gets of 4 and 12 MiB blobs on a quiet 2-core machine (4.0-14.5 ms per MiB, local
 * nats-server); measurements replace it.
 */
export const DEFAULT_BLOB_MS_PER_MIB = 6;

/**
 * A worker's measured fetch speed from the blobs bucket, ms per MiB, smoothed over fetches of at
 * least 64 KiB (smaller ones are mostly a round trip and say little per byte).
 */
export class FetchRate {
  private rate?: number;
  note(bytes: number, ms: number): void {
    if (bytes < 64 * 1024 || !(ms >= 0)) return;
    const sample = ms / (bytes / MIB);
    this.rate = this.rate === undefined ? sample : 0.8 * this.rate + 0.2 * sample;
  }
  get msPerMiB(): number | undefined {
    return this.rate;
  }
}

/** Expected time to fetch `bytes` by reference at `msPerMiB` (0 for nothing by reference). */
export function fetchEstimateMs(bytes: number, msPerMiB = DEFAULT_BLOB_MS_PER_MIB): number {
  return bytes > 0 ? (bytes / MIB) * msPerMiB : 0;
}

/** The references among named tensors (what a client deletes once it has its answer). */
export function refsOf(named: Record<string, WireTensor>): BlobRef[] {
  return Object.values(named).filter(isTensorRef).map((t) => t.ref);
}

/**
 * Which tensors to send by reference so that a message of `total` bytes fits in `budget`: the
 * largest first, until it fits; undefined when even all of them by reference would not do.
 * `sizes` are each tensor's share of the encoded message.
 */
export function chooseOffload(sizes: ReadonlyMap<string, number>, total: number, budget: number): string[] | undefined {
  // A reference costs about this much in the message: {dtype, shape, ref: {object, bytes}}.
  const REF_BYTES = 160;
  const chosen: string[] = [];
  let left = total;
  for (const [name, bytes] of [...sizes].sort((a, b) => b[1] - a[1])) {
    if (left <= budget) break;
    if (bytes <= REF_BYTES) break;
    chosen.push(name);
    left -= bytes - REF_BYTES;
  }
  return left <= budget ? chosen : undefined;
}

/** Each tensor's encoded size in the message's codec (only called when a message is too big). */
export function encodedSizes(named: Record<string, WireTensor>, json: boolean): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const [name, t] of Object.entries(named)) if (!isTensorRef(t)) sizes.set(name, encodePayload(t, json).data.length);
  return sizes;
}

/** A tensor's raw little-endian bytes (numbers from JSON converted to its dtype). */
function rawBytes(t: Tensor): Uint8Array {
  if (t.data instanceof Uint8Array) return t.data;
  const a = tensorToArray(t);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Puts a tensor's bytes in the blobs bucket under a fresh random name; its reference. */
export async function putTensor(blobs: BlobStore, t: Tensor): Promise<TensorRef> {
  const bytes = rawBytes(t);
  const want = elementCount(t.shape) * BYTES_PER_ELEMENT[t.dtype];
  if (bytes.byteLength !== want) {
    throw new InfaasError(ErrorCode.BadRequest, `shape [${t.shape.join(',')}] of ${t.dtype} needs ${want} bytes, got ${bytes.byteLength}`);
  }
  const object = objects.blob(nuid.next());
  await blobs.put(object, bytes);
  return { dtype: t.dtype, shape: [...t.shape], ref: { bucket: buckets.blobs, object, bytes: bytes.byteLength } };
}

/** Puts the named tensors in the blobs bucket; the same record with those replaced by references. */
export async function offload(blobs: BlobStore, named: Record<string, WireTensor>, names: readonly string[]): Promise<Record<string, WireTensor>> {
  const out = { ...named };
  const refs = await Promise.all(names.map((n) => putTensor(blobs, named[n] as Tensor)));
  names.forEach((n, i) => { out[n] = refs[i]; });
  return out;
}

/**
 * A reference's tensor, fetched: OBJECT_NOT_FOUND when the blob is gone (expired or deleted),
 * INVALID_INPUT when its size disagrees with the reference or the shape.
 */
export async function fetchTensor(blobs: BlobStore, t: TensorRef, what: string): Promise<Tensor> {
  const want = elementCount(t.shape) * BYTES_PER_ELEMENT[t.dtype];
  if (t.ref.bytes !== want) {
    throw new InfaasError(ErrorCode.InvalidInput, `${what}: shape [${t.shape.join(',')}] of ${t.dtype} needs ${want} bytes, the reference says ${t.ref.bytes}`);
  }
  const bytes = await blobs.get(t.ref.object);
  if (!bytes) {
    throw new InfaasError(ErrorCode.ObjectNotFound, `${what}: blob "${t.ref.object}" is not in bucket ${buckets.blobs}: it was deleted, or expired (blobs live ${BLOB_TTL_MS / 60_000} min)`, { object: t.ref.object, bucket: buckets.blobs });
  }
  if (bytes.byteLength !== want) {
    throw new InfaasError(ErrorCode.InvalidInput, `${what}: blob "${t.ref.object}" holds ${bytes.byteLength} bytes, shape [${t.shape.join(',')}] of ${t.dtype} needs ${want}`);
  }
  return { dtype: t.dtype, shape: [...t.shape], data: bytes };
}

/**
 * Named tensors with every reference fetched (at most `maxBytes` by reference in all); inline
 * ones pass through. `what` names them in errors ("input", "output").
 */
export async function resolveTensors(blobs: BlobStore, named: Record<string, WireTensor>, what: string, maxBytes = Infinity): Promise<Record<string, Tensor>> {
  const refs = Object.entries(named).filter((e): e is [string, TensorRef] => isTensorRef(e[1]));
  const total = refs.reduce((n, [, t]) => n + t.ref.bytes, 0);
  if (total > maxBytes) throw new InfaasError(ErrorCode.PayloadTooLarge, `${what}s by reference come to ${total} bytes; at most ${maxBytes}`);
  const fetched = await Promise.all(refs.map(([name, t]) => fetchTensor(blobs, t, `${what} ${name}`)));
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(named)) if (!isTensorRef(t)) out[name] = t;
  refs.forEach(([name], i) => { out[name] = fetched[i]; });
  return out;
}
