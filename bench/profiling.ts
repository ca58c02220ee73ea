// Profiling benchmark: registers the zoo through the real system (embedded NATS, registrar,
// profiler in child processes) and compares, in the same run, the profiler's batch-1/batch-32
// latencies with direct in-process ONNX Runtime timings of the same file and session options.
// Usage: npm run bench:profiling [-- --write]   (--write updates docs/benchmarks.md)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { objectBytes } from '../runtime/bus/store.js';
import { createLogger } from '../runtime/log.js';
import { RegistryClient, type ModelInfo } from '../runtime/client/registry-client.js';
import { createSession, ort } from '../runtime/onnx/onnx-session.js';
import { formatTable } from '../runtime/table.js';
import { startStack } from '../cluster/local.js';
import { registerZoo } from '../cluster/zoo.js';
import { loadSplit } from '../zoo/data.js';
import { machineLine, writeSection } from './machine.js';

const RUNS = 200;

async function directP50(bytes: Uint8Array, v: ModelInfo['variants'][number], batch: number, images: Float32Array): Promise<number> {
  const s = await createSession(bytes, { graphOptimizationLevel: v.optLevel, intraOpThreads: v.intraOpThreads, executionProvider: v.executionProvider });
  const feeds = { image: new ort.Tensor('float32', images.slice(0, batch * 784), [batch, 1, 28, 28]) };
  const warm = performance.now();
  for (let i = 0; i < 10 || performance.now() - warm < 50; i++) await s.run(feeds); // same warm-up rule as the profiler
  const times: number[] = [];
  const runs = batch === 1 ? RUNS : Math.max(20, RUNS / 4);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await s.run(feeds);
    times.push(performance.now() - t0);
  }
  await s.release();
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

const dir = mkdtempSync(join(tmpdir(), 'infaas-bench-'));
const log = createLogger({ level: 'warn' });
const stack = await startStack({ log, dataDir: dir, port: -1, controller: true, worker: true, name: 'bench-profiling' });
try {
  const client = new RegistryClient(stack.nc, stack.stores);
  const perModel: { name: string; seconds: number }[] = [];
  let t0 = performance.now();
  await registerZoo(client, {
    onEvent: (e) => {
      if (e.type === 'registration.completed') {
        perModel.push({ name: e.model, seconds: (performance.now() - t0) / 1000 });
        t0 = performance.now();
      }
    },
  });
  const images = loadSplit('validation', 32).images;
  const rows: (string | number)[][] = [];
  const b1: Record<string, number> = {};
  for (const { name, seconds } of perModel) {
    const info = await client.info(name);
    const groups = new Set(info.variants.map((v) => `${v.precision}-${v.optLevel}-${v.intraOpThreads}`)).size;
    for (const precision of ['fp32', 'int8'] as const) {
      const v = info.variants.find((x) => x.precision === precision && x.optLevel === 'all' && x.intraOpThreads === 1 && x.maxBatch === 32)!;
      const p = Object.values(v.profiles)[0];
      const bytes = await objectBytes(stack.stores.repository, v.object);
      const d1 = await directP50(bytes, v, 1, images);
      const d32 = await directP50(bytes, v, 32, images);
      const p1 = p.latency!.find((l) => l.batch === 1)!.p50Ms;
      const p32 = p.latency!.find((l) => l.batch === 32)!.p50Ms;
      if (precision === 'fp32') b1[name] = p1;
      rows.push([
        name, precision, precision === 'fp32' ? `${info.variants.length} / ${groups}` : '', precision === 'fp32' ? seconds.toFixed(1) : '',
        p1.toFixed(3), d1.toFixed(3), (p1 / d1).toFixed(2), p32.toFixed(3), d32.toFixed(3), (p32 / d32).toFixed(2),
        `${((p.accuracy ?? 0) * 100).toFixed(2)}%`,
      ]);
    }
  }
  const spread = Math.max(...Object.values(b1)) / Math.min(...Object.values(b1));
  const table = formatTable(
    ['model', 'precision', 'variants / runs', 'register s', 'b1 p50 profiler', 'b1 p50 direct', 'ratio', 'b32 p50 profiler', 'b32 p50 direct', 'ratio', 'accuracy'],
    rows,
  );
  const md = [
    '## Profiling (bench/profiling.ts)',
    '',
    `Machine: ${machineLine()}. Run: ${new Date().toISOString()}.`,
    '',
    'Method: `npm run bench:profiling` starts an embedded nats-server, the registrar and one profiler',
    '(default grid: fp32/int8 x opt level disabled/all x max batch 1/8/32 x 1/2 threads = 24 variants per model,',
    'profiled as 8 session configurations, each in a fresh child process: warm-up of at least 5 runs and 50 ms, then at least 20 runs',
    'and 150 ms per batch size; accuracy on the 2,004-digit held-out split) and registers the four zoo models.',
    '"register s" is wall time from request to `registration.completed`. For the `opt all, 1 thread` variants the',
    `same file is then timed directly in this process (warm-up of at least 10 runs and 50 ms, ${RUNS} runs at batch 1, ${RUNS / 4} at batch 32):`,
    'a ratio near 1 means the profiler measures what a caller of ONNX Runtime sees. Latencies in ms.',
    '',
    '```',
    table,
    '```',
    '',
    `Batch-1 p50 spread across the zoo (fp32, opt all, 1 thread): ${spread.toFixed(1)}x (largest / smallest).`,
  ].join('\n');
  process.stdout.write(md + '\n');
  if (process.argv.includes('--write')) writeSection(new URL('../docs/benchmarks.md', import.meta.url).pathname, 'profiling', md);
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
