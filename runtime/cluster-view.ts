// An in-memory view of live workers and their instances, fed by KV watches of infaas_workers and
// infaas_instances (never polled). A record whose heartbeat is older than `staleMs` counts as gone.
import type { KV } from 'nats';
import type { InstanceRecord, WorkerRecord } from '../schemas/worker.js';
import type { Logger } from './log.js';
import { watchInto } from './kv-watch.js';
import type { Stores } from './store.js';

export class ClusterView {
  readonly workers = new Map<string, WorkerRecord>();
  /** key: "<worker>.<instance>" */
  readonly instances = new Map<string, InstanceRecord>();
  private readonly stops: (() => void)[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly log: Logger, readonly staleMs = 5000) {}

  async start(stores: Stores): Promise<void> {
    await Promise.all([this.watch(stores.workers, 'workers', this.workers), this.watch(stores.instances, 'instances', this.instances)]);
  }

  stop(): void {
    for (const s of this.stops.splice(0)) s();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Workers that are ready and heartbeating. */
  liveWorkers(now = Date.now()): WorkerRecord[] {
    return [...this.workers.values()].filter((w) => w.state === 'ready' && now - w.heartbeatAt <= this.staleMs);
  }

  private async watch<T>(kv: KV, name: string, map: Map<string, T>): Promise<void> {
    this.stops.push(await watchInto(kv, name, map, this.log, () => { for (const l of this.listeners) l(); }));
  }
}
