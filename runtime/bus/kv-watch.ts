// Mirrors a KV bucket into a map with a watch (never polled): resolves once the current values are
// loaded. A value that is not JSON (an operator's stray `nats kv put`) is skipped with a warning
// instead of ending the watch.
import type { KV } from 'nats';
import type { Logger } from '../log.js';
import { entryValue } from './store.js';

export async function watchInto<T>(kv: KV, name: string, map: Map<string, T>, log: Logger, onChange: (key: string) => void): Promise<() => void> {
  let ready!: () => void;
  const initialized = new Promise<void>((resolve) => { ready = resolve; });
  const iter = await kv.watch({ key: '>', initializedFn: () => ready() });
  void (async () => {
    for await (const e of iter) {
      let value: T | undefined;
      try {
        value = entryValue<T>(e);
      } catch (err) {
        log.warn({ bucket: name, key: e.key, err: (err as Error).message }, 'skipping a KV value that is not JSON');
        continue;
      }
      if (value === undefined) map.delete(e.key);
      else map.set(e.key, value);
      onChange(e.key);
    }
  })().catch((err) => log.error({ err }, 'KV watch ended'));
  await initialized;
  return () => iter.stop();
}
