// A worker's heartbeat: once per monitor window, sample the instances (verdicts, KV stats), the
// process and host CPU, and rewrite the worker's KV record; liveness is that record's freshness.
import { hostname } from 'node:os';
import type { WorkerEvent, WorkerEventType, WorkerRecord } from '../../schemas/worker.js';
import { keys } from '../../subjects/index.js';
import type { Logger } from '../../runtime/log.js';
import { kvPut, type Stores } from '../../runtime/bus/store.js';
import { CpuSampler, InstanceSampler, type MonitorOptions } from '../monitor/index.js';
import type { InstanceRegistry } from './registry.js';

export interface HeartbeatDeps {
  worker: { id: string; hardwareClass: string; pricePerHour: number; threads: number; memoryBytes: number };
  registry: InstanceRegistry;
  stores: Stores;
  log: Logger;
  thresholds: MonitorOptions['thresholds'];
  event: (type: WorkerEventType, message: string, fields?: Partial<WorkerEvent>) => void;
  /** Measured fetch speed from the blobs bucket (ms per MiB), once there is one. */
  blobFetchMsPerMiB?: () => number | undefined;
}

export class Heartbeat {
  private readonly cpu = new CpuSampler();
  private readonly sampler: InstanceSampler;
  private readonly startedAt = Date.now();
  private usage: WorkerRecord['usage'] = { cpuCores: 0, hostCpu: 0, rssBytes: process.memoryUsage().rss, threadsReserved: 0, memoryReserved: 0, instances: 0, queued: 0, qps: 0 };

  constructor(private readonly d: HeartbeatDeps) {
    this.sampler = new InstanceSampler(d.worker.id, d.worker.hardwareClass, d.thresholds);
  }

  /**
   * One monitor window: verdicts to the instances, their records and the worker's usage to KV, and
   * an `instance.deadlines.missed` event per instance whose window had misses (at most one each per
   * window: KV keeps only the last window, and an operator watching events should not have to poll it).
   */
  sample(): void {
    const { registry } = this.d;
    const { records, changes, misses } = this.sampler.sample(registry.live());
    for (const c of changes) c.instance.verdict(c.verdict, c.reason);
    for (const m of misses) {
      this.d.event('instance.deadlines.missed', `${m.instance} (${m.variant}) missed ${m.misses} of ${m.queries} deadlines in ${m.windowMs} ms`, {
        instance: m.instance, variant: m.variant, details: { model: m.model, misses: m.misses, queries: m.queries, windowMs: m.windowMs },
      });
    }
    for (const r of records) {
      const inst = registry.instances.get(r.id);
      void registry.writeRecord(inst ? { ...r, state: inst.state } : r);
    }
    const reserved = registry.reserved();
    this.usage = {
      ...this.cpu.sample(), rssBytes: process.memoryUsage().rss, threadsReserved: reserved.threads, memoryReserved: reserved.memory,
      instances: records.length, queued: records.reduce((a, x) => a + x.queueLength, 0), qps: records.reduce((a, x) => a + x.serviceRate, 0),
    };
    const fetch = this.d.blobFetchMsPerMiB?.();
    if (fetch !== undefined) this.usage.blobFetchMsPerMiB = fetch;
  }

  write(state: WorkerRecord['state']): Promise<number> {
    const w = this.d.worker;
    return kvPut<WorkerRecord>(this.d.stores.workers, keys.worker(w.id), {
      id: w.id, host: hostname(), pid: process.pid, hardwareClass: w.hardwareClass, pricePerHour: w.pricePerHour,
      capacity: { threads: w.threads, memoryBytes: w.memoryBytes }, state, usage: this.usage, startedAt: this.startedAt, heartbeatAt: Date.now(),
    });
  }

  /** Writes the record, logging (not throwing) a failure: a worker whose NATS is gone must not crash on it. */
  beat(state: WorkerRecord['state']): void {
    void this.write(state).catch((err) => this.d.log.debug({ err: (err as Error).message }, 'heartbeat not written'));
  }
}
