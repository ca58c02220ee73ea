// Where the simulator's profiles come from: a live system's metadata store (the same records the
// dispatcher reads, through the same candidateProfiles), or a profile file exported from one.
import type { CandidateProfile } from '../../actors/dispatcher/select-variant.js';
import { candidateProfiles } from '../../actors/dispatcher/snapshot.js';
import { kvValues, type Stores } from '../../runtime/bus/store.js';
import type { ModelRecord, ProfileRecord, VariantRecord } from '../../schemas/registry.js';
import type { InstanceRecord, WorkerRecord } from '../../schemas/worker.js';

/** A profile file: what was measured, where, and the dispatcher's view of it. */
export interface ProfileFile {
  /** The machine the CPU profiles were measured on (bench/machine.ts). */
  machine: string;
  exportedAt: string;
  /** The hardware class the profiles were measured as. */
  hardwareClass: string;
  profiles: CandidateProfile[];
  /** The live workers when exported (threads, memory, price), for a like-for-like simulation. */
  workers: { id: string; hardwareClass: string; threads: number; memoryBytes: number; pricePerHour: number }[];
  /** Instances loaded (or loading) on those workers when exported. */
  instances: { variant: string; hardwareClass: string }[];
}

/** Profiles and workers as a live system's dispatcher would see them now. */
export async function readLiveProfiles(stores: Stores, machine: string): Promise<ProfileFile> {
  const [models, variants, profiles, workers, instances] = await Promise.all([
    kvValues<ModelRecord>(stores.models), kvValues<VariantRecord>(stores.variants), kvValues<ProfileRecord>(stores.profiles), kvValues<WorkerRecord>(stores.workers),
    kvValues<InstanceRecord>(stores.instances),
  ]);
  const live = [...workers.values()].filter((w) => Date.now() - w.heartbeatAt < 30_000);
  const list = candidateProfiles(models, variants, profiles.values());
  if (list.length === 0) throw new Error('no finished profiles in the metadata store: register models first (infaas up)');
  const classes = [...new Set(list.map((p) => p.hardwareClass))];
  return {
    machine, exportedAt: new Date().toISOString(), hardwareClass: classes[0],
    profiles: list,
    workers: live.map((w) => ({
      id: w.id, hardwareClass: w.hardwareClass, threads: w.capacity.threads, memoryBytes: w.capacity.memoryBytes, pricePerHour: w.pricePerHour,
    })),
    instances: [...instances.values()]
      .filter((i) => live.some((w) => w.id === i.worker) && !['draining', 'unloaded', 'failed'].includes(i.state))
      .map((i) => ({ variant: i.variant, hardwareClass: i.hardwareClass })),
  };
}

/** A profile file's contents, checked enough to give a clear error instead of a NaN later. */
export function parseProfileFile(text: string): ProfileFile {
  const f = JSON.parse(text) as Partial<ProfileFile>;
  if (!f || !Array.isArray(f.profiles) || f.profiles.length === 0) throw new Error('profile file: expected {profiles: [...]} with at least one profile (export one with --export-profiles)');
  f.profiles.forEach((p, i) => {
    const ok = typeof p.variantId === 'string' && typeof p.model === 'string' && typeof p.task === 'string' && typeof p.hardwareClass === 'string'
      && typeof p.maxBatch === 'number' && typeof p.threads === 'number' && typeof p.loadMs === 'number' && Array.isArray(p.latency) && p.latency.length > 0;
    if (!ok) throw new Error(`profile file: profile ${i + 1} lacks a field the simulator needs (variantId, model, task, hardwareClass, maxBatch, threads, loadMs, latency)`);
  });
  return { machine: f.machine ?? 'unknown', exportedAt: f.exportedAt ?? '', hardwareClass: f.hardwareClass ?? f.profiles[0].hardwareClass, profiles: f.profiles, workers: f.workers ?? [], instances: f.instances ?? [] };
}
