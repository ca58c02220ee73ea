// A lease in KV for work only one process may do at a time. Acquired with a create, renewed with
// a compare-and-set on the revision; a lease not renewed for ttlMs may be taken over (hosts'
// clocks are assumed to agree within a fraction of the TTL).
import type { KV } from 'nats';
import { kvCreate, kvGet, kvUpdate } from './store.js';

interface LeaseRecord { holder: string; renewedAt: number }

export class Lease {
  private revision?: number;

  constructor(private readonly kv: KV, private readonly key: string, readonly holder: string, readonly ttlMs = 10_000) {}

  /** True while this holder has the lease (acquired or renewed now). */
  async hold(now = Date.now()): Promise<boolean> {
    const value: LeaseRecord = { holder: this.holder, renewedAt: now };
    const cur = await kvGet<LeaseRecord>(this.kv, this.key);
    if (!cur) {
      const rev = await kvCreate(this.kv, this.key, value);
      this.revision = rev === false ? undefined : rev;
      return rev !== false;
    }
    if (cur.value.holder !== this.holder && now - cur.value.renewedAt < this.ttlMs) {
      this.revision = undefined;
      return false;
    }
    const rev = await kvUpdate(this.kv, this.key, value, cur.revision);
    this.revision = rev === false ? undefined : rev;
    return rev !== false;
  }

  /** Gives the lease up (if held) so another controller can take it at once. */
  async release(): Promise<void> {
    if (this.revision === undefined) return;
    const cur = await kvGet<LeaseRecord>(this.kv, this.key);
    if (cur?.value.holder === this.holder) await this.kv.delete(this.key).catch(() => {});
    this.revision = undefined;
  }
}
