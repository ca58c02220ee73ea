// An in-memory view of live workers and their instances, fed by KV watches of infaas_workers and
// infaas_instances (never polled). A record whose heartbeat is older than `staleMs` counts as gone.
import type { KV } from 'nats';
import type { InstanceRecord, WorkerRecord } from '../../schemas/worker.js';
import type { Logger } from '../log.js';
import { watchInto } from '../bus/kv-watch.js';
import type { Stores } from '../bus/store.js';

export class ClusterView {
  readonly workers = new Map<string, WorkerRecord>();
  /** key: "<worker>.<instance>" */
  readonly instances = new Map<string, InstanceRecord>();
  /** When this process last received each worker's record: liveness by local clock, not the writer's. */
  private readonly heardAt = new Map<string, number>();
  private readonly stops: (() => void)[] = [];
  private readonly listeners = new Set<(bucket: 'workers' | 'instances', key: string) => void>();

  constructor(private readonly log: Logger, readonly staleMs = 5000) {}

  async start(stores: Stores): Promise<void> {
    await Promise.all([this.watch(stores.workers, 'workers', this.workers), this.watch(stores.instances, 'instances', this.instances)]);
  }

  stop(): void {
    for (const s of this.stops.splice(0)) s();
  }

  onChange(listener: (bucket: 'workers' | 'instances', key: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Workers that are ready and heartbeating: a record rewritten within `staleMs` of this process's
   * clock (a writer's clock may be skewed; a record loaded at start counts from its heartbeat).
   */
  liveWorkers(now = Date.now()): WorkerRecord[] {
    const out: WorkerRecord[] = [];
    for (const [key, w] of this.workers) {
      if (w.state === 'ready' && now - (this.heardAt.get(key) ?? w.heartbeatAt) <= this.staleMs) out.push(w);
    }
    return out;
  }

  private async watch<T>(kv: KV, name: 'workers' | 'instances', map: Map<string, T>): Promise<void> {
    let loaded = false;
    const stop = await watchInto(kv, name, map, this.log, (key) => {
      if (name === 'workers' && loaded) this.heardAt.set(key, Date.now());
      for (const l of this.listeners) l(name, key);
    });
    loaded = true;
    this.stops.push(stop);
  }
}
