// JetStream KV (metadata, one-line JSON values) and Object Store (model repository) access.
import type { KV, KvEntry, NatsConnection, ObjectStore } from 'nats';
import { buckets } from '../../subjects/index.js';
import { decodeJson, encodeJson } from './codec.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { openBlobStore, type BlobStore } from './blobs.js';

export interface Stores {
  /** The connection the buckets were opened on (watches follow its reconnections). */
  nc: NatsConnection;
  models: KV;
  variants: KV;
  profiles: KV;
  workers: KV;
  instances: KV;
  leases: KV;
  /** Policy settings and pins the actors watch (the operator's console writes them). */
  settings: KV;
  /** Per-model summaries the console writes (throughput, goodput, misses, p99 over the last minute). */
  summary: KV;
  repository: ObjectStore;
  /** Tensors too big for one message, by reference (claim check; runtime/bus/blobs.ts). */
  blobs: BlobStore;
}

/** Worker and instance records older than this are gone from KV (their writer stopped heartbeating). */
export const LIVENESS_TTL_MS = 30_000;

/** A model's summary record older than this is gone (no controller is writing it any more). */
export const SUMMARY_TTL_MS = 120_000;

export interface StoreOptions {
  /** JetStream replicas: 1 for the embedded server, 3 on a cluster. */
  replicas?: number;
}

/**
 * Opens the buckets, creating them if missing. Idempotent; note that on nats-server 2.9 an
 * existing bucket keeps its original options (views.kv does not update them).
 */
export async function openStores(nc: NatsConnection, options: StoreOptions = {}): Promise<Stores> {
  const js = nc.jetstream();
  const replicas = options.replicas ?? 1;
  const [models, variants, profiles, workers, instances, leases, settings, summary, repository, blobs] = await Promise.all([
    js.views.kv(buckets.models, { history: 5, replicas, description: 'infaas registered models: one ModelRecord per model (docs/registry.md)' }),
    js.views.kv(buckets.variants, { history: 1, replicas, description: 'infaas model variants: one VariantRecord per variant (docs/registry.md)' }),
    js.views.kv(buckets.profiles, { history: 1, replicas, description: 'infaas variant profiles per hardware class: latency, memory, accuracy (docs/registry.md)' }),
    // Liveness without per-key TTL (nats-server 2.9): records are rewritten every window and the
    // bucket drops values older than LIVENESS_TTL_MS, so a dead worker's records disappear.
    js.views.kv(buckets.workers, { history: 1, replicas, ttl: LIVENESS_TTL_MS, description: 'infaas live workers: heartbeats with capacity and usage (docs/worker.md)' }),
    js.views.kv(buckets.instances, { history: 1, replicas, ttl: LIVENESS_TTL_MS, description: 'infaas loaded variant instances: state, load and latency per monitor window (docs/worker.md)' }),
    js.views.kv(buckets.leases, { history: 1, replicas, description: 'infaas leases for work only one controller may do at a time (the VM-autoscaler)' }),
    js.views.kv(buckets.settings, { history: 5, replicas, description: 'infaas policy settings: autoscaler pauses and knobs, instance pins (docs/operations.md)' }),
    js.views.kv(buckets.summary, { history: 1, replicas, ttl: SUMMARY_TTL_MS, description: 'infaas per-model summary over the last minute, written by the controllers\' console (docs/operations.md)' }),
    js.views.os(buckets.repository, { replicas, description: 'infaas model repository' }),
    openBlobStore(nc, options),
  ]);
  return { nc, models, variants, profiles, workers, instances, leases, settings, summary, repository, blobs };
}


export interface Versioned<T> {
  value: T;
  revision: number;
}

export function entryValue<T>(e: KvEntry): T | undefined {
  if (e.operation !== 'PUT' || e.value.length === 0) return undefined;
  return decodeJson(e.value) as T;
}

export async function kvGet<T>(kv: KV, key: string): Promise<Versioned<T> | undefined> {
  const e = await kv.get(key);
  if (!e) return undefined;
  const value = entryValue<T>(e);
  return value === undefined ? undefined : { value, revision: e.revision };
}

// JetStream's JSStreamWrongLastSequenceErrF: the key moved on from the revision we wrote against.
const WRONG_LAST_SEQUENCE = 10071;

function isWrongRevision(err: unknown): boolean {
  return (err as { api_error?: { err_code?: number } } | undefined)?.api_error?.err_code === WRONG_LAST_SEQUENCE;
}

/** Creates a key only if absent; false when another writer got there first. */
export async function kvCreate<T>(kv: KV, key: string, value: T): Promise<number | false> {
  try {
    return await kv.create(key, encodeJson(value));
  } catch (err) {
    if (isWrongRevision(err)) return false;
    throw err;
  }
}

/** Writes only if the key is still at `revision` (compare-and-set); false on a lost race. */
export async function kvUpdate<T>(kv: KV, key: string, value: T, revision: number): Promise<number | false> {
  try {
    return await kv.update(key, encodeJson(value), revision);
  } catch (err) {
    if (isWrongRevision(err)) return false;
    throw err;
  }
}

/** Purges a key only if it is still at `revision` (nobody wrote since); false on a lost race. */
export async function kvPurgeAt(kv: KV, key: string, revision: number): Promise<boolean> {
  try {
    await kv.purge(key, { previousSeq: revision });
    return true;
  } catch (err) {
    if (isWrongRevision(err)) return false;
    throw err;
  }
}

export async function kvPut<T>(kv: KV, key: string, value: T): Promise<number> {
  return kv.put(key, encodeJson(value));
}

/** Read-modify-write with retries on lost races; `change` returns undefined to leave the key alone. */
export async function kvModify<T>(kv: KV, key: string, change: (current: T) => T | undefined, attempts = 10): Promise<T | undefined> {
  for (let i = 0; i < attempts; i++) {
    const cur = await kvGet<T>(kv, key);
    if (!cur) return undefined;
    const next = change(cur.value);
    if (next === undefined) return cur.value;
    if ((await kvUpdate(kv, key, next, cur.revision)) !== false) return next;
  }
  throw new InfaasError(ErrorCode.Internal, `could not update ${key}: too many concurrent writers`);
}

export async function kvKeys(kv: KV, filter = '>'): Promise<string[]> {
  // Each key once: a key rewritten while the listing runs (a worker's heartbeat) can be delivered
  // twice, and a bench's fleet reading then counted that worker twice (test/bench-live.test.ts).
  const out = new Set<string>();
  for await (const k of await kv.keys(filter)) out.add(k);
  return [...out];
}

/** Every current value under a filter, by key (keys whose value is gone are left out). */
export async function kvValues<T>(kv: KV, filter = '>'): Promise<Map<string, T>> {
  const out = new Map<string, T>();
  for (const k of await kvKeys(kv, filter)) {
    const e = await kvGet<T>(kv, k);
    if (e) out.set(k, e.value);
  }
  return out;
}

/** Deletes every key under a filter; purge drops history so nothing lingers for watchers. */
export async function kvPurgeAll(kv: KV, filter: string): Promise<number> {
  const ks = await kvKeys(kv, filter);
  for (const k of ks) await kv.purge(k);
  return ks.length;
}

export async function objectBytes(os: ObjectStore, name: string): Promise<Uint8Array> {
  const bytes = await os.getBlob(name);
  if (!bytes) throw new InfaasError(ErrorCode.ObjectNotFound, `object "${name}" is not in the model repository`, { object: name });
  return bytes;
}

export async function putObject(os: ObjectStore, name: string, bytes: Uint8Array, description?: string): Promise<void> {
  await os.putBlob({ name, description }, bytes);
}

export async function deleteObjects(os: ObjectStore, prefixes: string[]): Promise<number> {
  let n = 0;
  const list = await os.list();
  for (const info of list) {
    if (!info.deleted && prefixes.some((p) => info.name.startsWith(p))) {
      await os.delete(info.name);
      n++;
    }
  }
  return n;
}
