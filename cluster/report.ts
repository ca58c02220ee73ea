// Human-readable reports: models, and models x variants with their measured profiles.
import type { ModelRecord } from '../schemas/registry.js';
import type { InstanceRecord, WorkerRecord } from '../schemas/worker.js';
import type { ModelInfo } from '../runtime/client/registry-client.js';
import { fmtBytes, fmtMs, formatTable } from '../runtime/table.js';

export function modelsTable(models: ModelRecord[]): string {
  return formatTable(
    ['model', 'task', 'status', 'variants', 'size', 'validation', 'submitter'],
    models.map((m) => [m.name, m.task, m.status, m.variants.length, fmtBytes(m.sizeBytes), m.validation ? `${m.validation.samples} samples` : `declared ${m.declaredAccuracy}`, m.submitter]),
  );
}

/** A profiled size as dims past the batch axis (1x3x640x640 -> 3x640x640), inputs joined by '+'. */
function sizeLabel(shape: Record<string, number[]>): string {
  return Object.values(shape).map((d) => d.slice(1).join('x')).join('+');
}

/** The accuracy figure with what it is: the metric (top1, ctc, fidelity:iou...), '*' when declared. */
function accuracyLabel(p: { accuracy?: number; accuracySource?: string; metric?: string }): string {
  if (p.accuracy === undefined) return '-';
  const pct = `${(p.accuracy * 100).toFixed(2)}%`;
  if (p.accuracySource === 'declared') return `${pct}*`;
  return p.metric ? `${pct} ${p.metric}` : pct;
}

/**
 * One row per variant and hardware class: load time, p50 latency per batch size (at the largest
 * profiled input size), batch-1 p50 at each profiled size when the model has several, memory,
 * accuracy named by its metric.
 */
export function variantsTable(infos: ModelInfo[], batches: number[] = [1, 8, 32]): string {
  const rows: (string | number)[][] = [];
  const sized = infos.some((i) => i.variants.some((v) => Object.values(v.profiles).some((p) => p.sizes && p.sizes.length > 1)));
  for (const info of infos) {
    for (const v of info.variants) {
      const suffix = v.id.slice(v.model.length + 1);
      const classes = Object.keys(v.profiles).sort();
      if (classes.length === 0) rows.push([v.model, suffix, fmtBytes(v.sizeBytes), '-', '-', ...batches.map(() => '-'), ...(sized ? ['-'] : []), '-', '-']);
      for (const cls of classes) {
        const p = v.profiles[cls];
        const at = (b: number) => p.latency?.find((l) => l.batch === b);
        rows.push([
          v.model, suffix, fmtBytes(v.sizeBytes), cls, p.status === 'done' ? fmtMs(p.loadMs) : p.status,
          ...batches.map((b) => (at(b) ? `${fmtMs(at(b)!.p50Ms)}/${fmtMs(at(b)!.p99Ms)}` : '-')),
          ...(sized ? [p.sizes?.map((z) => `${sizeLabel(z.shape)} ${fmtMs(z.latency.find((l) => l.batch === 1)?.p50Ms)}`).join(', ') || '-'] : []),
          fmtBytes(p.peakMemoryBytes),
          accuracyLabel(p),
        ]);
      }
    }
  }
  return formatTable(['model', 'variant', 'file', 'hw class', 'load ms', ...batches.map((b) => `b${b} p50/p99 ms`), ...(sized ? ['b1 p50 ms by size'] : []), 'peak mem', 'accuracy'], rows);
}

/** Workers with their capacity and usage, then their instances with state, load and latency. */
export function workersTable(workers: WorkerRecord[], instances: InstanceRecord[], now = Date.now()): string {
  const w = formatTable(
    ['worker', 'host', 'class', 'state', 'threads used', 'memory used', '$/h', 'cpu', 'q/s', 'heartbeat'],
    workers.map((r) => [
      r.id, r.host, r.hardwareClass, r.state, `${r.usage.threadsReserved}/${r.capacity.threads}`,
      `${fmtBytes(r.usage.memoryReserved)}/${fmtBytes(r.capacity.memoryBytes)}`, r.pricePerHour.toFixed(3),
      `${(r.usage.cpuCores * 100).toFixed(0)}%`, r.usage.qps.toFixed(1), `${((now - r.heartbeatAt) / 1000).toFixed(1)} s ago`,
    ]),
  );
  const i = formatTable(
    ['worker', 'instance', 'variant', 'state', 'arrivals/s', 'queue', 'mean batch', 'observed/profiled ms', 'capacity q/s', 'misses'],
    instances.map((r) => [
      r.worker, r.id, r.variant, r.state, r.arrivalRate.toFixed(1), r.queueLength, r.meanBatch.toFixed(1),
      r.latency.map((l) => `b${l.batch} ${fmtMs(l.observedMs)}/${fmtMs(l.profiledMs)}`).join(' ') || '-', r.capacityQps.toFixed(0), r.deadlineMisses,
    ]),
  );
  return `${w}\n\n${instances.length > 0 ? i : 'no instances loaded'}`;
}
