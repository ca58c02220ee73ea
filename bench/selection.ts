// Selection benchmark: decision time of the dispatcher's policy on a large synthetic index (50
// models, 2,000 variants, 5,200 profiles, 200 workers, 400 instances), the full-scan reference and
// the indexed policy side by side on the same requests, plus what a snapshot rebuild costs.
// Usage: npm run bench:selection [-- --write] [--quick]   (--write updates docs/benchmarks.md)
import { performance } from 'node:perf_hooks';
import { SnapshotBuilder, indexSnapshot, selectVariant, selectVariantScan, type Selection, type SelectionRequest, type Snapshot } from '../actors/dispatcher/index.js';
import { variantSuffix } from '../actors/profiler/plan.js';
import { ClusterView } from '../runtime/views/cluster-view.js';
import { silentLogger } from '../runtime/log.js';
import { batchSizesUpTo } from '../actors/profiler/profile-measure.js';
import { RegistryView } from '../runtime/views/registry-view.js';
import { formatTable } from '../runtime/table.js';
import type { OptLevel, Precision } from '../schemas/registry.js';
import type { InstanceState } from '../schemas/worker.js';
import { machineLine, writeSection } from './machine.js';

const QUICK = process.argv.includes('--quick');
const SEED = 4;
const DECISIONS = QUICK ? 4_000 : 40_000;
const WARMUP = QUICK ? 1_000 : 5_000;
/** Requests per block; blocks alternate which path runs first, so drift hits both alike. */
const BLOCK = 500;
const REBUILDS = QUICK ? 50 : 300;

/** Seeded uniform [0,1) (mulberry32): the same cluster and requests every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);
const between = (lo: number, hi: number) => lo + (hi - lo) * random();
const logBetween = (lo: number, hi: number) => Math.exp(between(Math.log(lo), Math.log(hi)));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
/** Zipf-ish: the first items of a list are asked for far more often than the last. */
const popular = <T>(xs: readonly T[], skew = 2.5): T => xs[Math.min(xs.length - 1, Math.floor(xs.length * random() ** skew))];

// ---------------------------------------------------------------- the synthetic cluster

/** Batch-1 latency and accuracy ranges per task, and whether it is also profiled on the GPU class. */
const TASKS = [
  { task: 'image-classification', b1Ms: [0.05, 8], accuracy: [0.70, 0.92], sizeMb: [2, 200], gpu: true },
  { task: 'object-detection', b1Ms: [2, 60], accuracy: [0.30, 0.55], sizeMb: [10, 250], gpu: true },
  { task: 'text-classification', b1Ms: [0.1, 12], accuracy: [0.80, 0.95], sizeMb: [5, 500], gpu: true },
  { task: 'speech-recognition', b1Ms: [5, 80], accuracy: [0.80, 0.95], sizeMb: [20, 300], gpu: false },
  { task: 'digit-classification', b1Ms: [0.01, 0.7], accuracy: [0.90, 0.99], sizeMb: [0.05, 2], gpu: false },
] as const;
const MODELS_PER_TASK = 10;
/** Latency factor at batch 1, exponent of batch size, load-time factor. */
const CLASSES = {
  'cpu-4t': { factor: 1, batchExp: 0.85, loadFactor: 1 },
  'cpu-16t': { factor: 0.7, batchExp: 0.75, loadFactor: 1 },
  'gpu-t4': { factor: 0.3, batchExp: 0.25, loadFactor: 3 },
} as const;
type HardwareClass = keyof typeof CLASSES;
/** Workers per class: cores, memory, hourly price choices (few distinct prices, so ties happen). */
const FLEET: Record<HardwareClass, { count: number; threads: number; memoryGb: number; prices: number[] }> = {
  'cpu-4t': { count: 100, threads: 4, memoryGb: 8, prices: [0.15, 0.16, 0.17, 0.18, 0.2] },
  'cpu-16t': { count: 70, threads: 16, memoryGb: 64, prices: [0.6, 0.65, 0.7, 0.8] },
  'gpu-t4': { count: 30, threads: 8, memoryGb: 32, prices: [0.9, 1.1, 1.3] },
};
const GRID = { precisions: ['fp32', 'int8'] as Precision[], optLevels: ['disabled', 'all'] as OptLevel[], maxBatches: [1, 4, 8, 16, 32], threads: [1, 2] };
const INSTANCES = 400;
const STATES: [InstanceState, number][] = [['active', 0.65], ['overloaded', 0.1], ['interfered', 0.08], ['loading', 0.12], ['draining', 0.05]];
const MB = 2 ** 20;

interface Cluster { registry: RegistryView; cluster: ClusterView; models: string[]; variants: string[] }
interface ModelSpec { name: string; task: string; accuracy: number; classes: HardwareClass[]; variants: string[] }
const AT = 0;

/** One model's 40 variants, each profiled on the model's classes. */
function addModel(registry: RegistryView, t: typeof TASKS[number], name: string): ModelSpec {
  const b1 = logBetween(t.b1Ms[0], t.b1Ms[1]);
  const accuracy = between(t.accuracy[0], t.accuracy[1]);
  const sizeBytes = Math.round(logBetween(t.sizeMb[0], t.sizeMb[1]) * MB);
  const classes: HardwareClass[] = t.gpu ? ['cpu-4t', 'cpu-16t', 'gpu-t4'] : ['cpu-4t', 'cpu-16t'];
  const variants: string[] = [];
  for (const precision of GRID.precisions) {
    const int8Loss = precision === 'int8' ? between(0, 0.012) : 0;
    const bytes = precision === 'int8' ? Math.round(sizeBytes / 4) : sizeBytes;
    for (const optLevel of GRID.optLevels) {
      for (const intraOpThreads of GRID.threads) {
        // One measured curve per session configuration and class; batch caps take its prefix, as the profiler does.
        const curves = new Map(classes.map((c) => {
          const k = CLASSES[c];
          const base = b1 * k.factor * (precision === 'int8' ? between(0.8, 1.05) : 1) * (optLevel === 'all' ? 0.85 : 1) * (intraOpThreads === 2 && c !== 'gpu-t4' ? 0.6 : 1);
          return [c, batchSizesUpTo(32).map((batch) => ({ batch, p50: base * batch ** k.batchExp * between(0.95, 1.05) }))];
        }));
        for (const maxBatch of GRID.maxBatches) {
          const spec = { precision, optLevel, maxBatch, intraOpThreads, executionProvider: 'cpu' };
          const id = `${name}.${variantSuffix(spec)}`;
          registry.variants.set(id, { id, model: name, task: t.task, ...spec, object: `${name}.${precision}`, sizeBytes: bytes, createdAt: AT });
          for (const c of classes) {
            registry.profiles.set(`${id}.${c}`, {
              variant: id, model: name, hardwareClass: c, status: 'done', worker: `profiler-${c}`, startedAt: AT, finishedAt: AT,
              loadMs: (1 + (bytes / MB) * 0.15) * CLASSES[c].loadFactor,
              latency: curves.get(c)!.filter((l) => l.batch <= maxBatch).map((l) => ({ batch: l.batch, p50Ms: l.p50, p99Ms: l.p50 * 1.3, meanMs: l.p50 * 1.05, runs: 50 })),
              peakMemoryBytes: Math.round(bytes * 1.3 + bytes * 0.05 * maxBatch), accuracy: accuracy - int8Loss, accuracySource: 'measured', validationSamples: 2000,
            });
          }
          variants.push(id);
        }
      }
    }
  }
  registry.models.set(name, {
    name, task: t.task, dataset: `${t.task}-val`, framework: 'onnx', inputs: [], outputs: [], submitter: 'bench', status: 'registered',
    object: name, sizeBytes, variants, registrar: 'bench', createdAt: AT, updatedAt: AT,
  });
  return { name, task: t.task, accuracy, classes, variants };
}

function addWorkers(cluster: ClusterView, heartbeatAt: number): Map<HardwareClass, string[]> {
  const byClass = new Map<HardwareClass, string[]>();
  for (const [c, f] of Object.entries(FLEET) as [HardwareClass, typeof FLEET[HardwareClass]][]) {
    const ids: string[] = [];
    for (let i = 0; i < f.count; i++) {
      const id = `${c}-w${i}`;
      cluster.workers.set(id, {
        id, host: 'bench', pid: i, hardwareClass: c, pricePerHour: pick(f.prices), state: 'ready', startedAt: AT, heartbeatAt,
        capacity: { threads: f.threads, memoryBytes: f.memoryGb * 1024 * MB },
        usage: {
          cpuCores: 0, hostCpu: 0, rssBytes: 0, threadsReserved: Math.floor(random() * (f.threads + 1)),
          memoryReserved: Math.round(random() * f.memoryGb * 1024 * MB), instances: 0, queued: 0, qps: 0,
        },
      });
      ids.push(id);
    }
    byClass.set(c, ids);
  }
  return byClass;
}

function buildCluster(heartbeatAt: number): Cluster {
  const registry = new RegistryView(silentLogger);
  const cluster = new ClusterView(silentLogger);
  const models = TASKS.flatMap((t) => Array.from({ length: MODELS_PER_TASK }, (_, m) => addModel(registry, t, `${t.task.split('-')[0]}-${m}`)));
  const workers = addWorkers(cluster, heartbeatAt);
  for (let i = 0; i < INSTANCES; i++) {
    // Instances run each task's 6 least accurate models (traffic favours cheap ones): a high accuracy floor needs a load.
    const task = popular(TASKS).task;
    const m = popular(models.filter((x) => x.task === task).sort((a, b) => a.accuracy - b.accuracy).slice(0, 6), 1.5);
    const v = registry.variants.get(popular(m.variants, 4))!;
    const c = pick(m.classes);
    const worker = pick(workers.get(c)!);
    let u = random();
    const state = STATES.find(([, share]) => (u -= share) < 0)?.[0] ?? 'active';
    cluster.instances.set(`${worker}.i${i}`, {
      id: `i${i}`, worker, variant: v.id, model: m.name, hardwareClass: c, state, threads: v.intraOpThreads, maxBatch: v.maxBatch, memoryBytes: v.sizeBytes,
      queueLength: Math.floor(random() * 8), inFlight: Math.floor(random() * v.maxBatch), arrivalRate: 0, serviceRate: 0, deadlineMisses: 0,
      meanBatch: 1, latency: [], capacityQps: 0, createdAt: AT, updatedAt: heartbeatAt,
    });
  }
  return { registry, cluster, models: models.map((m) => m.name), variants: models.flatMap((m) => m.variants) };
}

// ---------------------------------------------------------------- the request mix

type Kind = 'task' | 'model' | 'variant';
interface Sample { kind: Kind; request: SelectionRequest }

function requests(c: Cluster, n: number): Sample[] {
  const out: Sample[] = [];
  const running = [...c.cluster.instances.values()].map((i) => i.variant);
  for (let i = 0; i < n; i++) {
    const batch = pick([1, 1, 1, 1, 2, 4, 8, 16, 32]);
    // Half interactive objectives (only a running instance can meet most), half relaxed enough for a load.
    const latencyMs = random() < 0.5 ? logBetween(0.2, 200) : logBetween(250, 3000);
    const cap = random() < 0.15 ? { maxCostPerQuery: logBetween(1e-9, 1e-6) } : {};
    const u = random();
    if (u < 0.7) {
      const t = popular(TASKS);
      const minAccuracy = between(t.accuracy[0] - 0.05, t.accuracy[1] + 0.02);
      out.push({ kind: 'task', request: { task: t.task, batch, latencyMs, minAccuracy, ...cap } });
    } else if (u < 0.9) {
      const model = random() < 0.02 ? 'unknown-model' : popular(c.models);
      out.push({ kind: 'model', request: { model, batch, latencyMs, minAccuracy: 0, ...cap } });
    } else {
      const variant = random() < 0.5 ? pick(running) : pick(c.variants);
      out.push({ kind: 'variant', request: { variant, batch, latencyMs, minAccuracy: 0, ...cap } });
    }
  }
  return out;
}

// ---------------------------------------------------------------- timing

type Policy = (s: Snapshot, r: SelectionRequest) => Selection;
const PATHS: [string, Policy][] = [['scan', selectVariantScan], ['indexed', selectVariant]];
const percentile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

function stats(us: number[]): { n: number; median: number; p99: number; max: number; perSecond: number } {
  const sorted = Float64Array.from(us).sort();
  const total = us.reduce((a, x) => a + x, 0);
  return { n: us.length, median: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN, perSecond: (us.length / total) * 1e6 };
}
const fmt = (us: number) => (us >= 100 ? us.toFixed(0) : us >= 10 ? us.toFixed(1) : us.toFixed(2));

/** Per path: microseconds per decision and the choice, for each sample. */
function timeDecisions(snap: Snapshot, samples: Sample[]): { us: number[][]; chosen: Selection[][] } {
  const us = PATHS.map(() => new Array<number>(samples.length));
  const chosen = PATHS.map(() => new Array<Selection>(samples.length));
  for (let from = 0, block = 0; from < samples.length; from += BLOCK, block++) {
    const order = block % 2 === 0 ? [0, 1] : [1, 0];
    for (const k of order) {
      const policy = PATHS[k][1];
      for (let i = from; i < Math.min(samples.length, from + BLOCK); i++) {
        const t0 = process.hrtime.bigint();
        const sel = policy(snap, samples[i].request);
        const t1 = process.hrtime.bigint();
        us[k][i] = Number(t1 - t0) / 1000;
        chosen[k][i] = sel;
      }
    }
  }
  return { us, chosen };
}

/** What the timer pair itself costs around a call that does nothing (subtracted from nothing; stated). */
function timerOverhead(): number {
  const us: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const t0 = process.hrtime.bigint();
    const t1 = process.hrtime.bigint();
    us.push(Number(t1 - t0) / 1000);
  }
  return stats(us).median;
}

const ROWS = ['full rebuild (after a registry change)', 'indexSnapshot()', 'first decision, scan', 'first decision, indexed (index included)',
  'cluster rebuild (after a worker/instance change)', 'indexSnapshot(), profiles kept'] as const;

function timeRebuilds(builder: SnapshotBuilder, registry: RegistryView, cluster: ClusterView, samples: Sample[], now: number): Record<typeof ROWS[number], number[]> {
  const out = Object.fromEntries(ROWS.map((k) => [k, [] as number[]])) as Record<typeof ROWS[number], number[]>;
  const time = (row: typeof ROWS[number], f: () => void, plus = 0) => {
    const t0 = performance.now();
    f();
    out[row].push((performance.now() - t0) * 1000 + plus);
  };
  for (let i = 0; i < REBUILDS; i++) {
    const r = samples[i % samples.length].request;
    let snap!: Snapshot;
    // A fresh builder builds everything, as after a registry change.
    time(ROWS[0], () => { snap = new SnapshotBuilder(registry, cluster).snapshot(now); });
    time(ROWS[2], () => selectVariantScan(snap, r));
    time(ROWS[1], () => indexSnapshot(snap));
    time(ROWS[3], () => selectVariant(snap, r), out[ROWS[1]][i]);
    let kept!: Snapshot;
    // A `now` past half the stale time makes the long-lived builder rebuild its cluster part,
    // exactly what a worker or instance record change does; the profiles array is kept.
    time(ROWS[4], () => { kept = builder.snapshot(now + (i + 1) * 10_000); });
    time(ROWS[5], () => indexSnapshot(kept));
  }
  return out;
}

// ---------------------------------------------------------------- run and report

const NOW = 1_800_000_000_000;
const c = buildCluster(NOW * 2);
const builder = new SnapshotBuilder(c.registry, c.cluster);
const snap = builder.snapshot(NOW);
const samples = requests(c, DECISIONS);
timeDecisions(snap, requests(c, WARMUP));
const { us, chosen } = timeDecisions(snap, samples);
const mismatches = samples.filter((_, i) => JSON.stringify(chosen[0][i]) !== JSON.stringify(chosen[1][i])).length;
const rebuild = timeRebuilds(builder, c.registry, c.cluster, samples, NOW);
const overhead = timerOverhead();

const outcomes = (sel: Selection[]) => (['running', 'load', 'infeasible'] as const).map((k) => `${k} ${Math.round((100 * sel.filter((x) => x.kind === k).length) / Math.max(1, sel.length))}%`).join(', ');
const groups: [string, (i: number) => boolean][] = [
  ['task', (i) => samples[i].kind === 'task'], ['model', (i) => samples[i].kind === 'model'], ['variant', (i) => samples[i].kind === 'variant'],
  ['-> running', (i) => chosen[0][i].kind === 'running'], ['-> load', (i) => chosen[0][i].kind === 'load'], ['-> infeasible', (i) => chosen[0][i].kind === 'infeasible'],
  ['all', () => true],
];
const rows = groups.map(([name, keep]) => {
  const idx = samples.map((_, i) => i).filter(keep);
  const [scan, indexed] = us.map((u) => stats(idx.map((i) => u[i])));
  return [name, scan.n, fmt(scan.median), fmt(indexed.median), (scan.median / indexed.median).toFixed(1), fmt(scan.p99), fmt(indexed.p99), (scan.p99 / indexed.p99).toFixed(1),
    fmt(scan.max), fmt(indexed.max), Math.round(scan.perSecond), Math.round(indexed.perSecond), (indexed.perSecond / scan.perSecond).toFixed(1)];
});
const table = formatTable(
  ['query', 'n', 'median scan', 'median idx', 'ratio', 'p99 scan', 'p99 idx', 'ratio', 'max scan', 'max idx', 'decisions/s scan', 'decisions/s idx', 'ratio'],
  rows,
);
const rebuildTable = formatTable(['step on a fresh snapshot', 'median', 'p99', 'max'], ROWS.map((row) => {
  const x = stats(rebuild[row]);
  return [row, fmt(x.median), fmt(x.p99), fmt(x.max)];
}));
const ix = stats(rebuild[ROWS[1]]);
const s = snap;
const [allScan, allIndexed] = us.map((u) => stats(u));
const amortised = ix.median / (allScan.median - allIndexed.median);
const md = [
  '## Selection decision time (bench/selection.ts)',
  '',
  `Machine: ${machineLine()}. Run: ${new Date().toISOString()}.`,
  '',
  `Method: \`npm run bench:selection\` builds a seeded synthetic registry and cluster in memory (no NATS): ${c.models.length} models over`,
  `${TASKS.length} tasks, ${c.variants.length} variants (40 each: fp32/int8 x opt disabled/all x max batch 1/4/8/16/32 x 1/2 threads),`,
  `profiled on 2 CPU classes (and a GPU class for 3 of the 5 tasks): ${s.profiles.length} profiles; ${s.workers.size} workers`,
  `(100 cpu-4t, 70 cpu-16t, 30 gpu-t4; free threads and memory random, a few distinct prices so ties occur) and ${s.instances.length} instances`,
  '(65 % active, 10 % overloaded, 8 % interfered, 12 % loading, 5 % draining) of the 6 least accurate models of each task,',
  'popular tasks, models and variants more often. The records go into RegistryView/ClusterView maps (what the KV watches fill)',
  'and the snapshot comes from the live `SnapshotBuilder.snapshot()`. Requests: 70 % model-less task queries (accuracy floor',
  "spread across and above the task's range), 20 % model-specific (2 % unknown), 10 % variant-specific (half of them running);",
  'batch 1-32; latency objective log-uniform 0.2-200 ms for half, 250-3,000 ms (room for a load) for the other half; 15 % with',
  `a cost cap. ${samples.length.toLocaleString('en')} decisions per path after ${WARMUP.toLocaleString('en')} of warm-up, in blocks of ${BLOCK} that alternate which path runs`,
  `first, each call timed alone with \`process.hrtime.bigint()\` (the timer pair alone: ${fmt(overhead)} us, not subtracted).`,
  '"scan" is the policy as a full scan (`selectVariantScan`: every profile, every instance, every worker x feasible profile);',
  '"idx" is `selectVariant`, the same policy on an index built once per snapshot object (`indexSnapshot`, cached in a WeakMap).',
  `Both chose the same for ${samples.length - mismatches} of ${samples.length} requests (compared as JSON).`,
  `Outcomes: task ${outcomes(chosen[0].filter((_, i) => samples[i].kind === 'task'))}; model ${outcomes(chosen[0].filter((_, i) => samples[i].kind === 'model'))};`,
  `variant ${outcomes(chosen[0].filter((_, i) => samples[i].kind === 'variant'))}. Times in microseconds; ratio = scan / indexed`,
  '(decisions/s: indexed / scan, from the sum of the timed calls, one thread). "-> running" etc. group by what was chosen.',
  '',
  '```',
  table,
  '```',
  '',
  `Snapshot rebuilds (${REBUILDS} of each), microseconds: a full one (a fresh SnapshotBuilder, as after a registry change) and`,
  'the first decision taken on it (the indexed one includes building its index); then the cluster-only rebuild the live',
  'builder does after a worker or instance record changes (at most every 100 ms; forced here by advancing `now`), which',
  'keeps the profiles array, and indexing that snapshot (the profile part of the index is cached by profiles array):',
  '',
  '```',
  rebuildTable,
  '```',
  '',
  `The index pays for itself after about ${amortised.toFixed(1)} decisions on one snapshot (its build over the median saving per decision).`,
].join('\n');
process.stdout.write(md + '\n');
if (mismatches > 0) {
  process.stderr.write(`${mismatches} requests chose differently between the scan and the index\n`);
  process.exitCode = 1;
}
if (process.argv.includes('--write')) writeSection(new URL('../docs/benchmarks.md', import.meta.url).pathname, 'selection', md);
