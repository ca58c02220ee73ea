// End-to-end overhead at low load: the same variant queried through the system (infaas.query ->
// dispatcher -> worker -> session thread -> client), sent to the worker directly, and run in-process
// with ONNX Runtime, interleaved query by query so machine noise hits all three alike.
// Usage: npm run bench:overhead [-- --write] [--runs N]   (--write updates docs/benchmarks.md)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack } from '../cluster/local.js';
import { registerZoo } from '../cluster/zoo.js';
import { RegistryClient } from '../runtime/client/registry-client.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { createLogger } from '../runtime/log.js';
import { createSession, ort } from '../runtime/onnx/onnx-session.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { objectBytes } from '../runtime/bus/store.js';
import { fmtMs, formatTable } from '../runtime/table.js';
import { WorkerClient } from '../runtime/client/worker-client.js';
import { loadSplit } from '../zoo/data.js';
import { machineLine, writeSection } from './machine.js';

const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 1000;
const WARMUP = 100;
const GAP_MS = 2;
const MODELS = ['cnn-small', 'cnn-wide'];

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

const dir = mkdtempSync(join(tmpdir(), 'infaas-bench-'));
const log = createLogger({ level: 'warn' });
const stack = await startStack({
  log, dataDir: dir, port: -1, controller: true, worker: true, name: 'bench-overhead',
  profiler: { hardwareClass: 'cpu-bench', generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [1], threads: [1], providers: ['cpu'] } },
  serving: { autoscale: false },
});
try {
  const client = new RegistryClient(stack.nc, stack.stores);
  await registerZoo(client, { only: MODELS });
  const wc = new WorkerClient(stack.nc);
  const qc = new QueryClient(stack.nc);
  const images = loadSplit('validation', 64).images;
  const rows: (string | number)[][] = [];
  const summary: string[] = [];
  for (const name of MODELS) {
    const v = (await client.info(name)).variants[0];
    await wc.load(stack.worker!.id, v.id);
    const session = await createSession(await objectBytes(stack.stores.repository, v.object), { graphOptimizationLevel: v.optLevel, intraOpThreads: v.intraOpThreads, executionProvider: v.executionProvider });
    const t = { system: [] as number[], worker: [] as number[], direct: [] as number[] };
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const px = images.slice((i % 64) * 784, (i % 64 + 1) * 784);
      const image = arrayToTensor('float32', [1, 1, 28, 28], px);
      let t0 = performance.now();
      await qc.query({ variant: v.id, inputs: { image }, slo: { latencyMs: 1000 } });
      const sys = performance.now() - t0;
      await new Promise((r) => setTimeout(r, GAP_MS));
      t0 = performance.now();
      await wc.infer(stack.worker!.id, { variant: v.id, inputs: { image } }, { deadlineMs: 1000 });
      const wrk = performance.now() - t0;
      await new Promise((r) => setTimeout(r, GAP_MS));
      t0 = performance.now();
      await session.run({ image: new ort.Tensor('float32', px, [1, 1, 28, 28]) });
      const dir = performance.now() - t0;
      await new Promise((r) => setTimeout(r, GAP_MS));
      if (i >= WARMUP) { t.system.push(sys); t.worker.push(wrk); t.direct.push(dir); }
    }
    await session.release();
    for (const [path, xs] of [['through the system (infaas.query)', t.system], ['worker directly', t.worker], ['direct ONNX Runtime, in-process', t.direct]] as const) {
      rows.push([name, path, fmtMs(pct(xs, 0.5)), fmtMs(pct(xs, 0.99))]);
    }
    const d50 = pct(t.direct, 0.5);
    summary.push(`${name}: p50 system ${fmtMs(pct(t.system, 0.5))} ms = direct + ${fmtMs(pct(t.system, 0.5) - d50)} ms (x${(pct(t.system, 0.5) / d50).toFixed(1)}); `
      + `the dispatcher hop adds ${fmtMs(pct(t.system, 0.5) - pct(t.worker, 0.5))} ms over sending to the worker directly; p99 system ${fmtMs(pct(t.system, 0.99))} ms vs direct ${fmtMs(pct(t.direct, 0.99))} ms.`);
  }
  const table = formatTable(['model', 'path', 'p50 ms', 'p99 ms'], rows);
  const method = [
    `Machine: ${machineLine()}. Run: ${new Date().toISOString()}.`,
    '',
    `Method: \`npm run bench:overhead\` starts the local stack in one process (embedded nats-server, registrar, dispatcher, worker with`,
    `autoscaling off), registers ${MODELS.join(' and ')} (one variant each: fp32, opt all, batch 1, 1 thread) and loads them. For each`,
    `model it sends ${RUNS} single-image queries (after ${WARMUP} warm-up) one at a time, interleaving three paths per image with ${GAP_MS} ms`,
    'gaps (low load: nothing queues): a variant query through `infaas.query` (dispatcher -> worker, answered straight to the client),',
    'the same query sent to the worker directly, and `session.run` on an in-process session of the same file and options.',
    'Latency is client-observed. Caveat: client, dispatcher and worker share one process and 2 cores with the nats-server,',
    'so every hop also waits for one event loop; separate hosts would pay network time instead.',
  ].join('\n');
  const text = `## End-to-end overhead (bench/overhead.ts)\n\n${method}\n\n\`\`\`\n${table}\n\`\`\`\n\n${summary.join('\n')}\n`;
  process.stdout.write(`${text}\n`);
  if (args.includes('--write')) writeSection(new URL('../docs/benchmarks.md', import.meta.url).pathname, 'overhead', text);
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
