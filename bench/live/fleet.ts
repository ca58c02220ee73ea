// Provisioned cost of `infaas bench`: the workers alive while the run lasts, sampled from the workers
// bucket, held from one sample to the next, priced at their hourly price. Pure: no I/O, no clock.

/** A worker as a fleet sample saw it: what it costs while it is up. */
export interface FleetWorker {
  id: string;
  hardwareClass: string;
  /** Currency units per hour (the worker record's pricePerHour). */
  pricePerHour: number;
}

/**
 * The live workers at `atMs` (ms since the run started), or null when they could not be read (no
 * permission on the bucket, the bus down): a window touched by such a sample has no provisioned cost.
 */
export interface FleetSample {
  atMs: number;
  workers: FleetWorker[] | null;
}

export interface FleetStats {
  /** Distinct workers seen in the window's samples; null when not sampled or unreadable. */
  workers: number | null;
  /** Σ seconds each worker was up in the window; null likewise. */
  workerSeconds: number | null;
  /** Σ pricePerHour × seconds up / 3600; null likewise. */
  provisionedCost: number | null;
}

export const noFleet: FleetStats = Object.freeze({ workers: null, workerSeconds: null, provisionedCost: null });

/**
 * The fleet over [fromS, toS): each sample's workers are taken to stay up until the next sample
 * (the first one also back to the start of the run, the last one until `untilMs`). Samples must be
 * in time order. A window with no sample covering it, or touched by an unreadable one, is null.
 */
export function fleetInSpan(samples: readonly FleetSample[], untilMs: number, fromS: number, toS: number): FleetStats {
  const [from, to] = [fromS * 1000, Math.min(toS * 1000, untilMs)];
  if (samples.length === 0 || !(to > from)) return noFleet;
  const ids = new Set<string>();
  let workerMs = 0;
  let costMsPerHour = 0;
  for (let i = 0; i < samples.length; i++) {
    const start = i === 0 ? Math.min(0, samples[0].atMs) : samples[i].atMs;
    const end = i + 1 < samples.length ? samples[i + 1].atMs : untilMs;
    const overlap = Math.min(end, to) - Math.max(start, from);
    if (!(overlap > 0)) continue;
    const ws = samples[i].workers;
    if (ws === null) return noFleet;
    for (const w of ws) {
      ids.add(w.id);
      workerMs += overlap;
      costMsPerHour += w.pricePerHour * overlap;
    }
  }
  return { workers: ids.size, workerSeconds: workerMs / 1000, provisionedCost: costMsPerHour / 1000 / 3600 };
}
