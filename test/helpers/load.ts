// Open-loop load for worker tests: a fixed arrival rate, every query's outcome counted.
import type { InferRequest } from '../../schemas/worker.js';
import type { InfaasError } from '../../schemas/errors.js';
import type { WorkerClient } from '../../runtime/client/worker-client.js';

export interface LoadStats { sent: number; ok: number; errors: Record<string, number>; byVariant: Record<string, number> }

export interface Load {
  stats: LoadStats;
  setRate(qps: number): void;
  /** Stops sending and resolves once every query sent has its answer or error. */
  stop(): Promise<LoadStats>;
}

/** Sends `rate` queries per second in 10 ms ticks until stopped (open loop: it does not wait for answers). */
export function openLoop(wc: WorkerClient, workerId: string, query: () => InferRequest, rate: number, deadlineMs: number): Load {
  const stats: LoadStats = { sent: 0, ok: 0, errors: {}, byVariant: {} };
  const pending = new Set<Promise<void>>();
  let qps = rate;
  let owed = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    owed += (qps * (now - last)) / 1000;
    last = now;
    for (; owed >= 1; owed--) {
      stats.sent++;
      const p: Promise<void> = wc.infer(workerId, query(), { deadlineMs, timeoutMs: deadlineMs + 5000 }).then(
        (r) => { stats.ok++; stats.byVariant[r.variant] = (stats.byVariant[r.variant] ?? 0) + 1; },
        (err: InfaasError) => { stats.errors[err.code ?? 'UNKNOWN'] = (stats.errors[err.code ?? 'UNKNOWN'] ?? 0) + 1; },
      ).finally(() => pending.delete(p));
      pending.add(p);
    }
  }, 10);
  return {
    stats,
    setRate: (r) => { qps = r; },
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...pending]);
      return stats;
    },
  };
}
