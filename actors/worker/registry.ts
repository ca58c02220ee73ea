// A worker's instances: starting them (memory is the hard limit; idle instances are unloaded,
// least recently used, to make room; cores are shared), their KV records and state events, and
// which variant replaced which after an autoscaler switch.
import { customAlphabet } from 'nanoid';
import type { ProfileRecord } from '../../schemas/registry.js';
import type { InstanceRecord, WorkerEvent, WorkerEventType } from '../../schemas/worker.js';
import { keys } from '../../subjects/index.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { InlineSession } from '../../runtime/onnx/inline-session.js';
import type { Logger } from '../../runtime/log.js';
import type { RegistryView } from '../../runtime/views/registry-view.js';
import { kvPut, objectBytes, type Stores } from '../../runtime/bus/store.js';
import { ThreadedSession } from '../../runtime/onnx/threaded-session.js';
import { servingSpecs } from '../../runtime/onnx/batch-axes.js';
import { VariantInstance, type InstanceOptions, type InstanceSpec } from '../instance/index.js';

export const instanceIds = customAlphabet('abcdefghijklmnopqrstuvwxyz0123456789', 8);

export interface RegistryDeps {
  worker: { id: string; hardwareClass: string; pricePerHour: number; threads: number; memoryBytes: number };
  view: RegistryView;
  stores: Stores;
  log: Logger;
  event: (type: WorkerEventType, message: string, fields?: Partial<WorkerEvent>) => void;
  instanceOptions?: Partial<InstanceOptions>;
  /** Variants whose profiled largest batch runs within this many ms run inline (docs/worker.md). */
  inlineBelowMs: number;
}

export class InstanceRegistry {
  readonly instances = new Map<string, VariantInstance>();
  /**
   * Variants this worker's autoscaler switched away from, and what replaced them: unpinned queries
   * for the old variant (sent before the controller saw the switch) are served by the new one.
   */
  private readonly replacements = new Map<string, string>();

  constructor(private readonly d: RegistryDeps) {}

  /** Instances not yet unloaded or failed. */
  live(): VariantInstance[] {
    return [...this.instances.values()].filter((i) => i.state !== 'unloaded' && i.state !== 'failed');
  }

  /** Threads (informational: cores are shared) and memory (the limit) of the live instances. */
  reserved(): { threads: number; memory: number } {
    return this.live().reduce((a, i) => ({ threads: a.threads + i.spec.threads, memory: a.memory + i.spec.memoryBytes }), { threads: 0, memory: 0 });
  }

  profileOf(variant: string): ProfileRecord | undefined {
    const p = this.d.view.profiles.get(keys.profile(variant, this.d.worker.hardwareClass));
    return p?.status === 'done' ? p : undefined;
  }

  replaced(from: string, to: string): void {
    this.replacements.set(from, to);
  }

  /** The variant that now serves unpinned queries for `variant` (itself, unless a switch replaced it). */
  current(variant: string): string {
    let v = variant;
    for (let hops = 0; hops < 8; hops++) {
      for (const i of this.instances.values()) if (i.spec.variant === v && i.accepting) return v;
      const next = this.replacements.get(v);
      if (!next) break;
      v = next;
    }
    return variant;
  }

  /** Creates and starts loading an instance; NO_CAPACITY when its memory does not fit even after unloading idle ones. */
  start(variantId: string): VariantInstance {
    const { view, log, worker } = this.d;
    const v = view.variants.get(variantId);
    if (!v) throw new InfaasError(ErrorCode.VariantNotFound, `variant ${variantId} is not in the registry`, { variant: variantId });
    const m = view.models.get(v.model);
    if (!m) throw new InfaasError(ErrorCode.ModelNotFound, `model ${v.model} of variant ${variantId} is not in the registry`);
    const p = this.profileOf(variantId);
    const memory = p?.peakMemoryBytes ?? v.sizeBytes * 2;
    // (An evicted instance is idle: it releases its session as soon as it is told to drain.)
    const freed = this.reserved().memory + memory > worker.memoryBytes ? this.evictFor(variantId, memory) : 0;
    const r = this.reserved();
    if (r.memory - freed + memory > worker.memoryBytes) {
      throw new InfaasError(ErrorCode.NoCapacity, `no room for ${variantId} on ${worker.id}: needs ${mb(memory)}, ${mb(worker.memoryBytes - r.memory)} free and no idle instance to unload`, {
        memoryFree: worker.memoryBytes - r.memory,
      });
    }
    const spec: InstanceSpec = {
      id: `i-${instanceIds()}`, variant: v.id, model: v.model, maxBatch: v.maxBatch, threads: v.intraOpThreads, memoryBytes: memory,
      ...servingSpecs(m),
      ...(p?.latency && p.loadMs !== undefined ? { profile: { latency: p.latency, loadMs: p.loadMs, ...(p.sizes?.length ? { sizes: p.sizes } : {}) } } : {}),
    };
    if (!spec.profile) log.warn({ variant: v.id }, 'no profile for this hardware class yet: batching without a latency curve, no classification');
    this.replacements.delete(variantId);
    const inline = this.inline(p);
    const inst = new VariantInstance({
      spec, log, onState: (i) => this.onState(i), options: this.d.instanceOptions,
      worker: { id: worker.id, hardwareClass: worker.hardwareClass, pricePerHour: worker.pricePerHour, threads: worker.threads },
      open: async () => {
        const session = { graphOptimizationLevel: v.optLevel, intraOpThreads: v.intraOpThreads, executionProvider: v.executionProvider };
        const bytes = await objectBytes(this.d.stores.repository, v.object);
        return inline ? InlineSession.open(bytes, session) : ThreadedSession.open(bytes, session);
      },
    });
    this.instances.set(spec.id, inst);
    log.info({ instance: spec.id, variant: v.id, inline }, 'loading instance');
    return inst;
  }

  /** Starts an instance and resolves when it serves; MODEL_LOAD_FAILED with the reason otherwise. */
  async load(variantId: string): Promise<VariantInstance> {
    const inst = this.start(variantId);
    const state = await inst.loaded;
    if (state === 'failed') throw new InfaasError(ErrorCode.ModelLoadFailed, `loading ${variantId} failed: ${inst.reason ?? 'unknown error'}`, { variant: variantId });
    return inst;
  }

  async unload(instanceId: string): Promise<void> {
    const inst = this.instances.get(instanceId);
    if (!inst) throw new InfaasError(ErrorCode.VariantNotLoaded, `no instance ${instanceId} on ${this.d.worker.id}`);
    await inst.drain();
  }

  /** The KV record of an instance as it is now (the monitor adds window statistics to its own). */
  record(inst: VariantInstance): InstanceRecord {
    return {
      id: inst.spec.id, worker: this.d.worker.id, variant: inst.spec.variant, model: inst.spec.model, hardwareClass: this.d.worker.hardwareClass, state: inst.state,
      ...(inst.reason ? { reason: inst.reason } : {}),
      threads: inst.spec.threads, maxBatch: inst.spec.maxBatch, memoryBytes: inst.spec.memoryBytes,
      queueLength: inst.queueLength, inFlight: inst.inFlight, arrivalRate: 0, serviceRate: 0, deadlineMisses: 0, meanBatch: 0,
      latency: [], capacityQps: inst.capacityQps, ...(inst.loadMs !== undefined ? { loadMs: inst.loadMs } : {}),
      createdAt: inst.createdAt, updatedAt: Date.now(),
    };
  }

  writeRecord(rec: InstanceRecord): Promise<unknown> {
    return kvPut(this.d.stores.instances, keys.instance(this.d.worker.id, rec.id), rec)
      .catch((err) => this.d.log.debug({ err: (err as Error).message }, 'instance record not written'));
  }

  /** A profiled variant whose largest batch runs within inlineBelowMs. */
  private inline(p: ProfileRecord | undefined): boolean {
    const full = p?.latency?.reduce((a, l) => Math.max(a, l.p50Ms), 0);
    return full !== undefined && full > 0 && full <= this.d.inlineBelowMs;
  }

  private onState(inst: VariantInstance): void {
    const state = inst.state;
    this.d.event('instance.state', `${inst.spec.id} (${inst.spec.variant}) is ${state}${inst.reason ? `: ${inst.reason}` : ''}`, {
      instance: inst.spec.id, variant: inst.spec.variant, state,
    });
    if (state === 'unloaded' || state === 'failed') {
      this.instances.delete(inst.spec.id);
      if (state === 'failed') this.d.log.warn({ instance: inst.spec.id, variant: inst.spec.variant, reason: inst.reason }, 'instance failed');
      void this.d.stores.instances.delete(keys.instance(this.d.worker.id, inst.spec.id)).catch(() => {});
      return;
    }
    void this.writeRecord(this.record(inst));
  }

  /** Starts draining idle instances (nothing queued or running) of other variants, oldest arrival first, until `memory` would fit; the bytes they free. */
  private evictFor(variantId: string, memory: number): number {
    const { worker, log } = this.d;
    const idle = this.live().filter((i) => i.spec.variant !== variantId && i.serving && i.queueLength === 0 && i.inFlight === 0)
      .sort((a, b) => a.lastArrivalAt - b.lastArrivalAt);
    const before = worker.memoryBytes - this.reserved().memory;
    let free = before;
    for (const i of idle) {
      if (free >= memory) break;
      free += i.spec.memoryBytes;
      log.info({ instance: i.spec.id, variant: i.spec.variant, for: variantId }, 'unloading an idle instance to make room');
      this.d.event('instance.evicted', `${i.spec.id} (${i.spec.variant}) unloaded to make room for ${variantId}`, { instance: i.spec.id, variant: i.spec.variant });
      void i.drain();
    }
    return free - before;
  }
}

export function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}
