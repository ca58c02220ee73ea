// Mirrors a KV bucket into a map with a watch (never polled): resolves once the current values are
// loaded. The mirror survives the bus: when the connection comes back after a disconnection, or the
// watch ends for any other reason, it starts again from the last revision it saw (with backoff
// while JetStream is not ready yet), keeping the last known values meanwhile. A value that is not
// JSON or does not match its schema (an operator's stray `nats kv put`, a forged record) is skipped
// with a warning, never passed on.
import type { TSchema } from '@sinclair/typebox';
import type { KV, KvEntry, NatsConnection } from 'nats';
import type { Logger } from '../log.js';
import { entryValue } from './store.js';
import { validate } from '../../schemas/validate.js';

export interface WatchOptions {
  /** Values that fail it are skipped (and an earlier value under the key is kept). */
  schema?: TSchema;
  /** The connection whose reconnections restart the watch (default: none, the watch's own recovery only). */
  nc?: NatsConnection;
  /** Called on every (re)start once the watch is running again: a reconnection, say. */
  onResume?: () => void;
}

const BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

export async function watchInto<T>(kv: KV, name: string, map: Map<string, T>, log: Logger, onChange: (key: string) => void, options: WatchOptions = {}): Promise<() => void> {
  let lastRevision = 0;
  let stopped = false;
  let current: { stop(): void } | undefined;
  const stopCurrent = (): void => { current?.stop(); current = undefined; };
  let generation = 0;

  const apply = (e: KvEntry): void => {
    lastRevision = Math.max(lastRevision, e.revision);
    let value: T | undefined;
    try {
      value = entryValue<T>(e);
    } catch (err) {
      log.warn({ bucket: name, key: e.key, err: (err as Error).message }, 'skipping a KV value that is not JSON');
      return;
    }
    if (value !== undefined && options.schema) {
      upgradeTimestamps(value);
      try {
        validate(options.schema, value, `${name} record ${e.key}`);
      } catch (err) {
        log.warn({ bucket: name, key: e.key, err: (err as Error).message }, 'skipping a KV value that does not match its schema');
        return;
      }
    }
    if (value === undefined) map.delete(e.key);
    else map.set(e.key, value);
    onChange(e.key);
  };

  /** One watch, from the revision after the last one seen; resolves once it has caught up. */
  const run = async (limitMs?: number): Promise<void> => {
    const mine = ++generation;
    let ready!: () => void;
    const initialized = new Promise<void>((resolve) => { ready = resolve; });
    const iter = await kv.watch({ key: '>', initializedFn: () => ready(), ...(lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : {}) });
    current = iter;
    void (async () => {
      for await (const e of iter) apply(e);
    })().catch((err) => log.warn({ bucket: name, err: (err as Error).message }, 'KV watch failed')).finally(() => {
      // Ended by us (stop, or a restart that replaced it) or by the bus: only the latter restarts.
      if (!stopped && mine === generation) restart('the watch ended');
    });
    if (limitMs === undefined) { await initialized; return; }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`not caught up within ${limitMs} ms`)), limitMs); });
    try { await Promise.race([initialized, late]); } finally { clearTimeout(timer); }
  };

  let restarting = false;
  const restart = (why: string): void => {
    if (stopped || restarting) return;
    restarting = true;
    stopCurrent();
    generation++;
    void (async () => {
      for (let i = 0; !stopped; i++) {
        try {
          await run(10_000);
          log.info({ bucket: name, why, fromRevision: lastRevision }, 'KV watch resumed');
          options.onResume?.();
          return;
        } catch (err) {
          log.debug({ bucket: name, err: (err as Error).message }, 'KV watch not back yet');
          stopCurrent();
          await new Promise((r) => setTimeout(r, BACKOFF_MS[Math.min(i, BACKOFF_MS.length - 1)]));
        }
      }
    })().finally(() => { restarting = false; });
  };

  await run();
  const stopStatus = options.nc ? followStatus(options.nc, (type) => { if (type === 'reconnect') restart('the connection came back'); }) : undefined;
  return () => {
    stopped = true;
    stopStatus?.();
    stopCurrent();
  };
}

/** Calls `listener` with each connection status type (disconnect, reconnect...) until the returned stop is called. */
export function followStatus(nc: NatsConnection, listener: (type: string) => void): () => void {
  const status = nc.status();
  void (async () => {
    for await (const s of status) listener(s.type);
  })().catch(() => undefined);
  // nats.js returns a QueuedIterator (it has stop()), typed only as an AsyncIterable.
  return () => (status as unknown as { stop?: () => void }).stop?.();
}

const TIMESTAMP_KEYS = ['createdAt', 'updatedAt', 'startedAt', 'finishedAt', 'at'] as const;

/**
 * Records written before timestamps were epoch milliseconds carry ISO strings: read as epoch ms,
 * so a system upgraded over an existing data directory keeps its models, variants and profiles.
 */
export function upgradeTimestamps(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  const r = value as Record<string, unknown>;
  for (const k of TIMESTAMP_KEYS) {
    const v = r[k];
    if (typeof v !== 'string') continue;
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) r[k] = ms;
  }
}
