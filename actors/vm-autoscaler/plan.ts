// Pure policy: add or remove workers of a hardware class. State in, state out, no I/O, so the
// controller, the tests and the trace simulator share it.
//
// Rules:
// - Scale out a class (one worker at a time, none while one is still starting, none within
//   cooldownMs of the last action, never above maxWorkers) when every live worker of the class is
//   busy (CPU at or above busyUtilisation of its threads), when the dispatchers
//   report queries they could not place for lack of room, or when a worker asks for mitigation
//   (an overloaded or interfered variant its own model-autoscaler has no room to help).
// - Scale in (drain) the least-used worker this autoscaler started when the class's utilisation
//   has stayed below idleUtilisation for scaleInAfterMs, it serves nothing queued, and the class
//   keeps at least minWorkers. Workers it did not start are never stopped.

export interface ClusterWorker {
  id: string;
  hardwareClass: string;
  threads: number;
  threadsReserved: number;
  /** CPU in use, in cores. */
  cpuCores: number;
  queued: number;
  /** Started by this autoscaler's provisioner (only those may be stopped). */
  managed: boolean;
}

export interface ClusterSnapshot {
  now: number;
  workers: ClusterWorker[];
  /** Queries the dispatchers could not place for lack of room, per class, since the last plan. */
  unplaced: Record<string, number>;
  /** Mitigation requests from workers since the last plan, per class. */
  mitigations: Record<string, number>;
  /** Classes with a worker being provisioned now. */
  starting: string[];
  /** Classes this autoscaler manages (scale-out targets even with no live worker). */
  classes: string[];
}

export interface ClusterScalingSettings {
  busyUtilisation: number;
  idleUtilisation: number;
  scaleInAfterMs: number;
  cooldownMs: number;
  minWorkers: number;
  maxWorkers: number;
}

/**
 * Defaults: busy at 80 % of a worker's threads (the model-autoscaler's headroom), idle below 20 %
 * for a minute, one action per class every 30 s (a worker takes seconds to start and its first
 * windows of stats to show its effect), at least one worker, at most eight per class.
 */
export const defaultClusterScalingSettings: ClusterScalingSettings = Object.freeze({
  busyUtilisation: 0.8, idleUtilisation: 0.2, scaleInAfterMs: 60_000, cooldownMs: 30_000, minWorkers: 1, maxWorkers: 8,
});

export interface ClusterScalingState { classes: Record<string, { lastActionAt?: number; idleSince?: number }> }
export const initialClusterScalingState: ClusterScalingState = Object.freeze({ classes: {} });

export type ClusterScalingAction =
  | { type: 'scale-out'; hardwareClass: string; why: string; details: Record<string, number> }
  | { type: 'scale-in'; hardwareClass: string; worker: string; why: string; details: Record<string, number> };

/** CPU in use over the worker's threads. Reserved-but-idle threads are not load: a worker whose
 *  threads are all reserved shows up as unplaced queries instead. */
function utilisation(w: ClusterWorker): number {
  return w.threads > 0 ? w.cpuCores / w.threads : 1;
}

export function planClusterScaling(
  state: ClusterScalingState, snap: ClusterSnapshot, settings: ClusterScalingSettings = defaultClusterScalingSettings,
): { state: ClusterScalingState; actions: ClusterScalingAction[] } {
  const classes = new Set([...snap.classes, ...snap.workers.map((w) => w.hardwareClass)]);
  const next: ClusterScalingState = { classes: {} };
  const actions: ClusterScalingAction[] = [];
  for (const cls of [...classes].sort()) {
    const prev = state.classes[cls] ?? {};
    const mine = snap.workers.filter((w) => w.hardwareClass === cls);
    const util = mine.length === 0 ? 1 : mine.reduce((a, w) => a + utilisation(w), 0) / mine.length;
    const allBusy = mine.length > 0 && mine.every((w) => utilisation(w) >= settings.busyUtilisation);
    const unplaced = snap.unplaced[cls] ?? 0;
    const mitigations = snap.mitigations[cls] ?? 0;
    const details = { workers: mine.length, utilisation: util, unplaced, mitigations };
    const cooling = prev.lastActionAt !== undefined && snap.now - prev.lastActionAt < settings.cooldownMs;
    let idleSince = util < settings.idleUtilisation && mine.every((w) => w.queued === 0) ? prev.idleSince ?? snap.now : undefined;
    let lastActionAt = prev.lastActionAt;
    const wantOut = allBusy || unplaced > 0 || mitigations > 0 || (mine.length < settings.minWorkers && snap.classes.includes(cls));
    if (wantOut && !cooling && !snap.starting.includes(cls) && mine.length < settings.maxWorkers) {
      const why = mine.length < settings.minWorkers ? `${mine.length} workers, fewer than the minimum ${settings.minWorkers}`
        : unplaced > 0 ? `${unplaced} queries could not be placed for lack of room`
        : mitigations > 0 ? `${mitigations} mitigation requests (overloaded or interfered variants with no room on their worker)`
        : `all ${mine.length} workers busy (utilisation ${(util * 100).toFixed(0)}%)`;
      actions.push({ type: 'scale-out', hardwareClass: cls, why, details });
      lastActionAt = snap.now;
      idleSince = undefined;
    } else if (!wantOut && !cooling && idleSince !== undefined && snap.now - idleSince >= settings.scaleInAfterMs && mine.length > settings.minWorkers) {
      const candidates = mine.filter((w) => w.managed).sort((a, b) => utilisation(a) - utilisation(b) || a.id.localeCompare(b.id));
      if (candidates.length > 0) {
        const w = candidates[0];
        actions.push({
          type: 'scale-in', hardwareClass: cls, worker: w.id,
          why: `utilisation ${(util * 100).toFixed(0)}% below ${(settings.idleUtilisation * 100).toFixed(0)}% for ${((snap.now - idleSince) / 1000).toFixed(0)} s`,
          details: { ...details, idleMs: snap.now - idleSince },
        });
        lastActionAt = snap.now;
        idleSince = undefined;
      }
    }
    const entry = { ...(lastActionAt !== undefined ? { lastActionAt } : {}), ...(idleSince !== undefined ? { idleSince } : {}) };
    if (Object.keys(entry).length > 0) next.classes[cls] = entry;
  }
  return { state: next, actions };
}
