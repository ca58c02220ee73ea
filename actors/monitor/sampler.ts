// The monitor's sampling step: per instance, turn a window of counters into a sample, classify it
// (pure policy in classify.ts) and build the stats record; per process, CPU and memory use.
import { cpus } from 'node:os';
import type { InstanceRecord, ObservedLatency } from '../../schemas/worker.js';
import type { VariantInstance } from '../instance/index.js';
import {
  classifyInstance, defaultThresholds, initialClassifierState,
  type ClassifierState, type ClassifierThresholds, type InstanceSample,
} from './classify.js';

export interface MonitorOptions {
  windowMs: number;
  thresholds: ClassifierThresholds;
}

/** About once a second, as the issue asks; two windows of evidence make a verdict (see classify.ts). */
export const defaultMonitorOptions: MonitorOptions = Object.freeze({ windowMs: 1000, thresholds: defaultThresholds });

export interface Verdicts { instance: VariantInstance; verdict: ClassifierState['verdict']; reason: string }

/**
 * An instance's window in which queries missed their deadlines: what the `instance.deadlines.missed`
 * event reports. `queries` is every query the instance answered in the window, misses included.
 */
export interface DeadlineMisses { instance: string; variant: string; model: string; misses: number; queries: number; windowMs: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export class InstanceSampler {
  private readonly classifiers = new Map<string, ClassifierState>();
  private readonly lastQueue = new Map<string, number>();

  constructor(private readonly workerId: string, private readonly hardwareClass: string, private readonly thresholds: ClassifierThresholds) {}

  /**
   * Takes each instance's window, classifies it and returns its stats record plus any verdict
   * change (applied by the caller, which owns the actors). Instances without a profile for this
   * hardware class are never classified: there is nothing to compare with.
   */
  sample(instances: readonly VariantInstance[], now = Date.now()): { records: InstanceRecord[]; changes: Verdicts[]; misses: DeadlineMisses[] } {
    const records: InstanceRecord[] = [];
    const changes: Verdicts[] = [];
    const misses: DeadlineMisses[] = [];
    const seen = new Set<string>();
    for (const inst of instances) {
      const id = inst.spec.id;
      seen.add(id);
      const w = inst.takeWindow(now);
      const latency: ObservedLatency[] = [...w.latency.entries()].sort((a, b) => a[0] - b[0]).map(([batch, ms]) => ({
        // At the runs' own input sizes (a model profiled at several sizes); the reference curve otherwise.
        batch, observedMs: median(ms), profiledMs: w.predicted.get(batch)?.length ? median(w.predicted.get(batch)!) : inst.latencyMs(batch), runs: ms.length,
      }));
      const prevQueue = this.lastQueue.get(id) ?? 0;
      this.lastQueue.set(id, w.queueLength);
      const arrivalRate = (w.arrivals * 1000) / w.ms;
      if (w.deadlineMisses > 0) {
        misses.push({ instance: id, variant: inst.spec.variant, model: inst.spec.model, misses: w.deadlineMisses, queries: w.completions + w.refusals, windowMs: Math.round(w.ms) });
      }
      let reason = inst.reason;
      if (inst.spec.profile && inst.serving) {
        const sample: InstanceSample = {
          arrivalRate, capacity: inst.capacityQps, queueLength: w.queueLength, queueGrowth: w.queueLength - prevQueue,
          // Every query answered in the window: computed, expired or shed (completions, which count the
          // misses answered without computing too) and refused at admission (refusals).
          queries: w.completions + w.refusals, deadlineMisses: w.deadlineMisses,
          latency: latency.map((l) => ({ batch: l.batch, observedMs: l.observedMs, profiledMs: l.profiledMs })),
        };
        const c = classifyInstance(this.classifiers.get(id) ?? initialClassifierState, sample, this.thresholds);
        this.classifiers.set(id, c.state);
        if (c.changed) changes.push({ instance: inst, verdict: c.state.verdict, reason: c.reason });
        reason = c.reason;
      }
      records.push({
        id, worker: this.workerId, variant: inst.spec.variant, model: inst.spec.model, hardwareClass: this.hardwareClass,
        state: inst.state, ...(reason ? { reason } : {}),
        threads: inst.spec.threads, maxBatch: inst.spec.maxBatch, memoryBytes: inst.spec.memoryBytes,
        queueLength: w.queueLength, inFlight: inst.inFlight,
        arrivalRate, serviceRate: (w.completions * 1000) / w.ms, deadlineMisses: w.deadlineMisses, windowMs: Math.round(w.ms),
        meanBatch: w.batches > 0 ? w.rows / w.batches : 0, latency, capacityQps: inst.capacityQps,
        ...(inst.loadMs !== undefined ? { loadMs: inst.loadMs } : {}),
        createdAt: inst.createdAt, updatedAt: now,
      });
    }
    for (const id of this.classifiers.keys()) if (!seen.has(id)) { this.classifiers.delete(id); this.lastQueue.delete(id); }
    return { records, changes, misses };
  }
}

/** Process CPU (all threads, ORT's included) in cores, and the whole host's busy fraction. */
export class CpuSampler {
  private last = process.cpuUsage();
  private lastAt = performance.now();
  private lastHost = hostTimes();

  sample(): { cpuCores: number; hostCpu: number } {
    const now = performance.now();
    const usage = process.cpuUsage(this.last);
    const host = hostTimes();
    const wallUs = Math.max(1, (now - this.lastAt) * 1000);
    const total = host.total - this.lastHost.total;
    const idle = host.idle - this.lastHost.idle;
    this.last = process.cpuUsage();
    this.lastAt = now;
    this.lastHost = host;
    return { cpuCores: (usage.user + usage.system) / wallUs, hostCpu: total > 0 ? Math.max(0, 1 - idle / total) : 0 };
  }
}

function hostTimes(): { total: number; idle: number } {
  let total = 0;
  let idle = 0;
  for (const c of cpus()) {
    const t = c.times;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
    idle += t.idle;
  }
  return { total, idle };
}
