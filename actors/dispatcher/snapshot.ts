// Builds the selection policy's snapshot from the in-memory registry and cluster views. Rebuilt
// only when a watched bucket changed (a decision allocates nothing it could share), plus the
// dispatcher's own count of queries it sent since each instance last reported. Load time counts
// the worker's session start as well as the profiled session creation.
import type { ClusterView } from '../../runtime/views/cluster-view.js';
import { SESSION_START_MS } from '../instance/index.js';
import type { RegistryView } from '../../runtime/views/registry-view.js';
import type { LatencyPoint, ModelRecord, ProfileRecord, VariantRecord } from '../../schemas/registry.js';
import type { CandidateProfile, InstanceView, Snapshot, WorkerView } from './select-variant.js';

export class SnapshotBuilder {
  private cached?: Snapshot;
  private profiles?: CandidateProfile[];
  private clusterDirty = true;
  private builtAt = 0;
  private byInstance = new Map<string, InstanceView>();
  /** Queries sent per "<worker>.<variant>" since that instance's last stats record. */
  private readonly sent = new Map<string, number>();
  /** When each "<worker>.<variant>" last reported, by this process's clock. */
  private readonly reportedAt = new Map<string, number>();

  /**
   * @param minRebuildMs Worker and instance records change about once a second each (hundreds of
   *   changes a second on a large cluster): the snapshot follows them at most this often.
   */
  constructor(private readonly registry: RegistryView, private readonly cluster: ClusterView, private readonly minRebuildMs = 100) {
    // Registry changes are rare and cost a full rebuild of the profile list (~10 ms for 5,000
    // profiles); cluster changes are constant and rebuild only workers and instances (~0.2 ms).
    registry.onChange(() => { this.profiles = undefined; this.cached = undefined; });
    // What this dispatcher sent to an instance since its last report stays counted until that
    // instance reports again (other records changing say nothing about its queue).
    cluster.onChange((bucket, key) => {
      this.clusterDirty = true;
      const r = bucket === 'instances' ? cluster.instances.get(key) : undefined;
      if (r) {
        this.sent.delete(`${r.worker}.${r.variant}`);
        this.reportedAt.set(`${r.worker}.${r.variant}`, Date.now());
        if (r.state !== 'loading') for (const l of this.instanceListeners) l(r.worker, r.variant);
      }
    });
  }

  private readonly instanceListeners: ((workerId: string, variantId: string) => void)[] = [];

  /** Called when an instance of a variant on a worker reports a state past loading. */
  onInstance(listener: (workerId: string, variantId: string) => void): void {
    this.instanceListeners.push(listener);
  }

  noteSent(workerId: string, variantId: string): void {
    const k = `${workerId}.${variantId}`;
    this.sent.set(k, (this.sent.get(k) ?? 0) + 1);
    const inst = this.byInstance.get(k);
    if (inst) inst.outstanding++;
  }

  /**
   * A load this dispatcher just asked for: until the worker's records show it, the cached snapshot
   * counts the instance as loading and its threads and memory as taken, so the next queries wait
   * for it instead of loading the variant again (or finding no room).
   */
  noteLoad(workerId: string, variantId: string): void {
    const snap = this.cached;
    const k = `${workerId}.${variantId}`;
    if (!snap || this.byInstance.has(k)) return;
    const w = snap.workers.get(workerId);
    const p = w && snap.profiles.find((x) => x.variantId === variantId && x.hardwareClass === w.hardwareClass);
    if (!w || !p) return;
    const view: InstanceView = { variantId, workerId, state: 'loading', outstanding: 0 };
    // New arrays and maps (a new snapshot object): the policy's index is cached per snapshot.
    this.cached = {
      profiles: snap.profiles,
      workers: new Map(snap.workers).set(workerId, { ...w, freeThreads: w.freeThreads - p.threads, freeMemoryBytes: w.freeMemoryBytes - p.peakMemoryBytes }),
      instances: [...snap.instances, view],
    };
    this.byInstance.set(k, view);
  }

  /** Drops the cached snapshot: the next decision sees the views as they are now (a worker just found dead). */
  invalidate(): void {
    this.cached = undefined;
  }

  snapshot(now = Date.now()): Snapshot {
    const age = now - this.builtAt;
    const fresh = this.cached && age < this.cluster.staleMs / 2 && (!this.clusterDirty || age < this.minRebuildMs);
    if (fresh) return this.cached!;
    this.profiles ??= this.buildProfiles();
    this.cached = { profiles: this.profiles, ...this.buildCluster(now) };
    this.clusterDirty = false;
    this.builtAt = now;
    return this.cached;
  }

  private buildProfiles(): CandidateProfile[] {
    return candidateProfiles(this.registry.models, this.registry.variants, this.registry.profiles.values());
  }

  private buildCluster(now: number): Pick<Snapshot, 'workers' | 'instances'> {
    const workers = new Map<string, WorkerView>();
    for (const w of this.cluster.liveWorkers(now)) {
      workers.set(w.id, {
        id: w.id, hardwareClass: w.hardwareClass, pricePerThreadHour: w.pricePerHour / Math.max(1, w.capacity.threads),
        freeThreads: w.capacity.threads - w.usage.threadsReserved, freeMemoryBytes: w.capacity.memoryBytes - w.usage.memoryReserved,
      });
    }
    const instances: InstanceView[] = [];
    this.byInstance = new Map();
    for (const r of this.cluster.instances.values()) {
      if (!workers.has(r.worker) || r.state === 'unloaded' || r.state === 'failed') continue;
      const k = `${r.worker}.${r.variant}`;
      // inFlight counts every accepted query not yet answered, queued ones included.
      const view: InstanceView = {
        variantId: r.variant, workerId: r.worker, state: r.state,
        outstanding: Math.max(r.queueLength, r.inFlight) + (this.sent.get(k) ?? 0), reportedAt: this.reportedAt.get(k) ?? now,
      };
      instances.push(view);
      this.byInstance.set(`${r.worker}.${r.variant}`, view);
    }
    return { workers, instances };
  }
}

/**
 * The selection policy's profiles from registry records: finished profiles of variants of
 * registered models, load time counting the worker's session start, latency per input size where
 * the profile has sizes. The dispatcher's snapshot and
 * the trace simulator (reading a live system's KV) build them the same way.
 */
export function candidateProfiles(models: ReadonlyMap<string, Pick<ModelRecord, 'task' | 'status'>>, variants: ReadonlyMap<string, VariantRecord>, profiles: Iterable<ProfileRecord>): CandidateProfile[] {
  const out: CandidateProfile[] = [];
  const sized: [CandidateProfile, NonNullable<ProfileRecord['sizes']>][] = [];
  for (const p of profiles) {
    if (p.status !== 'done' || !p.latency?.length) continue;
    const v = variants.get(p.variant);
    const m = v && models.get(v.model);
    if (!v || !m || m.status !== 'registered') continue;
    const candidate: CandidateProfile = {
      variantId: v.id, model: v.model, task: m.task, hardwareClass: p.hardwareClass, accuracy: p.accuracy ?? 0, precision: v.precision,
      maxBatch: v.maxBatch, threads: v.intraOpThreads, loadMs: (p.loadMs ?? 0) + SESSION_START_MS, peakMemoryBytes: p.peakMemoryBytes ?? v.sizeBytes * 2,
      latency: curveUpTo(p.latency, v.maxBatch),
    };
    out.push(candidate);
    if (p.sizes?.length) sized.push([candidate, p.sizes]);
  }
  // Size curves are made after every candidate, so candidates and their reference curves lie together
  // in memory: the policy passes over all of a task's candidates when its memo misses, and with the
  // size curves interleaved that pass was 1.5-2x slower, sizes unused (bench/selection.ts, sizes on
  // every profile).
  for (const [c, sizes] of sized) {
    const curves = sizes.map((s) => ({ elements: s.elements, latency: curveUpTo(s.latency, c.maxBatch) })).filter((s) => s.latency.length > 0).sort((a, b) => a.elements - b.elements);
    if (curves.length > 0) c.sizes = curves;
  }
  return out;
}

/** A profiled curve as the policy reads it: ascending batch, up to the variant's max batch, p50 only. */
function curveUpTo(latency: readonly LatencyPoint[], maxBatch: number): { batch: number; p50Ms: number }[] {
  return [...latency].sort((a, b) => a.batch - b.batch).filter((l) => l.batch <= maxBatch).map((l) => ({ batch: l.batch, p50Ms: l.p50Ms }));
}
