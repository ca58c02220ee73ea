// An in-memory view of live workers and their instances, fed by KV watches of infaas_workers and
// infaas_instances (never polled). A record whose heartbeat is older than `staleMs` counts as gone,
// except while the whole feed is silent (see liveWorkers).
import type { KV } from 'nats';
import type { TSchema } from '@sinclair/typebox';
import { InstanceRecord, WorkerRecord } from '../../schemas/worker.js';
import type { Logger } from '../log.js';
import { followStatus, watchInto } from '../bus/kv-watch.js';
import type { Stores } from '../bus/store.js';

export class ClusterView {
  readonly workers = new Map<string, WorkerRecord>();
  /** key: "<worker>.<instance>" */
  readonly instances = new Map<string, InstanceRecord>();
  /** When this process last received each worker's record: liveness by local clock, not the writer's. */
  private readonly heardAt = new Map<string, number>();
  /** Workers found dead (no responders) by this process, and when: out until heard from again. */
  private readonly downAt = new Map<string, number>();
  private readonly stops: (() => void)[] = [];
  private readonly listeners = new Set<(bucket: 'workers' | 'instances', key: string) => void>();
  /** When this process last received any worker's record (or loaded the bucket). */
  private lastArrival = Date.now();
  private silenceLogged = false;

  /**
   * @param staleMs a worker not heard from for this long is gone
   * @param feedGraceMs how long a silence of the whole feed (two or more workers quiet at once) is
   *   not counted against them: JetStream moving the bucket's leader after a NATS node dies stops
   *   every heartbeat for seconds, and no worker died. A dead worker is found meanwhile by its
   *   missing responders (markDown).
   */
  constructor(private readonly log: Logger, readonly staleMs = 5000, readonly feedGraceMs = 30_000) {}

  async start(stores: Stores): Promise<void> {
    await Promise.all([
      this.watch(stores, stores.workers, 'workers', this.workers, WorkerRecord),
      this.watch(stores, stores.instances, 'instances', this.instances, InstanceRecord),
    ]);
    this.followOutages(stores);
  }

  stop(): void {
    for (const s of this.stops.splice(0)) s();
  }

  /**
   * The last known state survives a disconnection from the bus: the time without news does not
   * count against a worker's heartbeat (a worker that died meanwhile is found by its missing
   * responders, or goes stale once news flows again).
   */
  private followOutages(stores: Stores): void {
    let since: number | undefined;
    this.stops.push(followStatus(stores.nc, (type) => {
      if (type === 'disconnect') since ??= Date.now();
      if (type === 'reconnect' && since !== undefined) {
        const outage = Date.now() - since;
        since = undefined;
        for (const [key, w] of this.workers) this.heardAt.set(key, (this.heardAt.get(key) ?? w.heartbeatAt) + outage);
        this.log.info({ outageMs: outage }, 'reconnected: keeping the last known workers while their records resume');
        for (const l of this.listeners) l('workers', '');
      }
    }));
  }

  onChange(listener: (bucket: 'workers' | 'instances', key: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Workers that are ready and heartbeating: a record rewritten within `staleMs` of this process's
   * clock (a writer's clock may be skewed; a record loaded at start counts from its heartbeat),
   * not counting a silence of the whole feed (feedSilenceGrace), and not found dead since.
   */
  liveWorkers(now = Date.now()): WorkerRecord[] {
    const ready: { w: WorkerRecord; heard: number; down: boolean }[] = [];
    for (const [key, w] of this.workers) {
      const heard = this.heardAt.get(key) ?? w.heartbeatAt;
      const down = this.downAt.get(key);
      if (w.state === 'ready') ready.push({ w, heard, down: down !== undefined && heard <= down });
    }
    const candidates = ready.filter((c) => !c.down);
    const grace = feedSilenceGrace(ready.map((c) => c.heard), this.lastArrival, now, this.staleMs, this.feedGraceMs);
    if (grace > this.staleMs && !this.silenceLogged) {
      this.silenceLogged = true;
      this.log.warn({ silentMs: now - this.lastArrival }, 'no worker record has arrived for a while from any worker: keeping the last known workers while the feed is silent');
    }
    return candidates.filter((c) => now - grace - c.heard <= this.staleMs).map((c) => c.w);
  }

  /**
   * A worker found dead (its subjects have no responders) or refusing work: not live until a record
   * of it arrives after `now` (a worker that comes back heartbeats again; a dead one never does).
   */
  markDown(workerId: string, now = Date.now()): void {
    this.downAt.set(workerId, now);
    for (const l of this.listeners) l('workers', workerId);
  }

  isDown(workerId: string): boolean {
    const down = this.downAt.get(workerId);
    return down !== undefined && (this.heardAt.get(workerId) ?? 0) <= down;
  }

  private async watch<T>(stores: Stores, kv: KV, name: 'workers' | 'instances', map: Map<string, T>, schema: TSchema): Promise<void> {
    let loaded = false;
    const stop = await watchInto(kv, name, map, this.log, (key) => {
      if (name === 'workers') {
        this.lastArrival = Date.now();
        this.silenceLogged = false;
        if (loaded) this.heardAt.set(key, Date.now());
      }
      for (const l of this.listeners) l(name, key);
    }, { schema, nc: stores.nc });
    loaded = true;
    this.stops.push(stop);
  }
}

/**
 * How much of the time since the feed's last record is not counted against the workers: all of it
 * (up to `graceMs`) when two or more workers were live at that moment, since several falling quiet
 * together says the feed stopped, not the workers; none otherwise (one worker falling quiet is
 * indistinguishable from its death). In steady traffic the silence is a fraction of a heartbeat.
 */
export function feedSilenceGrace(heardAt: readonly number[], lastArrival: number, now: number, staleMs: number, graceMs: number): number {
  const silent = Math.max(0, now - lastArrival);
  const liveThen = heardAt.filter((h) => lastArrival - h <= staleMs).length;
  return liveThen >= 2 ? Math.min(silent, graceMs) : 0;
}
