// Saturation benchmark: does the system deliver what the hardware can, within the objective, when
// many clients send at once? Side by side in one run, the client in its own process: bare NATS
// request/reply, a hand-written NATS responder around one ONNX Runtime session (bench/responder.ts),
// ONNX Runtime in-process, and the system (infaas up's processes: embedded nats-server, controller
// and worker in one process) with variant, model and model-less queries. Closed loops at 1, 8 and
// 64 outstanding; an open-loop step from 10 % to 200 % of a batch-1 instance's capacity.
// Usage: npm run bench:saturation [-- --write] [--quick]
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack } from '../cluster/local.js';
import { registerZoo } from '../cluster/zoo.js';
import { RegistryClient } from '../runtime/client/registry-client.js';
import { createLogger } from '../runtime/log.js';
import { formatTable, fmtMs } from '../runtime/table.js';
import { subjects } from '../subjects/index.js';
import { zooDir } from '../zoo/index.js';
import { runClient, runEcho, type ClientCommand, type RunResult, type Target } from './load-client.js';
import { machineLine, writeSection } from './machine.js';

const argv = process.argv.slice(2);
const role = argv.includes('--role') ? argv[argv.indexOf('--role') + 1] : 'main';
if (role === 'client') await runClient(argv[argv.indexOf('--url') + 1]);
else if (role === 'echo') await runEcho(argv[argv.indexOf('--url') + 1], argv[argv.indexOf('--subject') + 1]);
else await main();

async function main(): Promise<void> {
  const QUICK = argv.includes('--quick');
  /** Only the step, with the worker's decisions printed as they happen (for diagnosis). */
  const ONLY_STEP = argv.includes('--only-step');
  /** Cores the worker gives its instances (default 2, what infaas up gives it on this machine). */
  const WORKER_THREADS = argv.includes('--worker-threads') ? Number(argv[argv.indexOf('--worker-threads') + 1]) : 2;
  const OBJECTIVE_MS = 50;
  const MODEL = 'cnn-small';
  /** The step needs a model whose batch-1 instance, not the bus, bounds throughput: cnn-wide (~0.7 ms a run). */
  const STEP_MODEL = 'cnn-wide';
  const STEP_ACCURACY = 0.97;
  const MODELS = ['mlp-small', 'mlp-wide', 'cnn-small', 'cnn-wide'];
  const MIN_ACCURACY = 0.94;
  const CONCURRENCY = argv.includes('--concurrency') ? [Number(argv[argv.indexOf('--concurrency') + 1])] : [1, 8, 64];
  const [WARMUP_S, MEASURE_S] = QUICK ? [2, 3] : [5, 10];
  const STEP = QUICK ? { low: 3, high: 8 } : { low: 5, high: 15 };
  const self = fileURLToPath(import.meta.url);
  const dir = mkdtempSync(join(tmpdir(), 'infaas-saturation-'));
  const log = createLogger({ level: 'warn' });
  const children: ChildProcess[] = [];
  const spawn = async (args: string[], file = self): Promise<ChildProcess> => {
    const c = fork(file, args, { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(c);
    await new Promise<void>((resolve, reject) => { c.once('message', () => resolve()); c.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`))); });
    return c;
  };
  const generator = { precisions: ['fp32', 'int8'] as ('fp32' | 'int8')[], optLevels: ['all'] as const, maxBatches: [1, 32], threads: [1], providers: ['cpu'] };
  const stack = await startStack({
    log, dataDir: dir, port: -1, controller: true, worker: true, name: 'bench-saturation',
    // The load generators and the hand-written responders run in their own processes on bench
    // subjects of their own; like every earlier run, this one measures without access control.
    auth: false,
    profiler: { hardwareClass: 'cpu-2t-bench', threads: WORKER_THREADS, generator: { ...generator, optLevels: [...generator.optLevels] } },
  });
  try {
    const started = Date.now();
    await registerZoo(new RegistryClient(stack.nc, stack.stores), { only: MODELS });
    process.stderr.write(`registered ${MODELS.join(', ')} (4 variants each) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    const client = await spawn(['--role', 'client', '--url', stack.url]);
    await spawn(['--role', 'echo', '--url', stack.url, '--subject', 'bench.echo']);
    const responder = fileURLToPath(new URL('./responder.ts', import.meta.url));
    await spawn([stack.url, 'bench.responder', join(zooDir, `${MODEL}.onnx`)], responder);
    await spawn([stack.url, 'bench.responder-wide', join(zooDir, `${STEP_MODEL}.onnx`)], responder);
    const ask = (cmd: ClientCommand): Promise<RunResult> => new Promise((resolve, reject) => {
      client.once('message', (m: { type: string; result?: RunResult; message?: string }) => (m.type === 'result' ? resolve(m.result!) : reject(new Error(m.message))));
      client.send(cmd);
    });
    const query = (pick: Record<string, unknown>, minAccuracy?: number): Target => ({
      subject: subjects.query, body: { ...pick, slo: { latencyMs: OBJECTIVE_MS, ...(minAccuracy !== undefined ? { minAccuracy } : {}) } },
    });
    const targets: [string, Target][] = [
      ['bare NATS request/reply (echo)', { subject: 'bench.echo', body: {} }],
      ['hand-written responder (1 ORT session)', { subject: 'bench.responder', body: {} }],
      [`system, variant ${MODEL}.fp32-all-b32-t1-cpu`, query({ variant: `${MODEL}.fp32-all-b32-t1-cpu` })],
      [`system, model ${MODEL}`, query({ model: MODEL })],
      [`system, model-less (accuracy >= ${MIN_ACCURACY})`, query({ task: 'digit-classification' }, MIN_ACCURACY)],
    ];
    const rows: (string | number)[][] = [];
    const results = new Map<string, RunResult>();
    const row = (path: string, load: string, r: RunResult) => {
      const answered = r.good + r.late;
      const errs = Object.entries(r.errors).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
      rows.push([load, path, (r.sent / r.seconds).toFixed(0), (r.good / r.seconds).toFixed(0), pct(r.sent - r.good, r.sent), ms(r.p50), ms(r.p99), errs || (answered ? '0' : '-')]);
    };
    const file = join(zooDir, `${MODEL}.onnx`);
    const ortSeq = await ask({ type: 'ort', file, batch: 1, seconds: MEASURE_S / 2, sequential: true });
    const ort32 = await ask({ type: 'ort', file, batch: 32, seconds: MEASURE_S / 2, sequential: false });
    for (const concurrency of ONLY_STEP ? [] : CONCURRENCY) {
      for (const [name, target] of targets) {
        process.stderr.write(`closed loop ${concurrency}: ${name}\n`);
        const r = await ask({ type: 'closed', target, concurrency, warmupS: WARMUP_S, measureS: MEASURE_S, objectiveMs: OBJECTIVE_MS });
        r.seconds = MEASURE_S;
        results.set(`${concurrency}:${name}`, r);
        row(name, `closed ${concurrency}`, r);
      }
    }
    if (ONLY_STEP) {
      stack.nc.subscribe('infaas.events.worker.>', { callback: (_e, m) => {
        const e = JSON.parse(new TextDecoder().decode(m.data)) as { type: string; message: string };
        if (e.type !== 'worker.started') process.stderr.write(`  [${new Date().toISOString().slice(17, 23)}] ${e.type}: ${e.message}\n`);
      } });
    }
    // The step: 10 % -> 200 % of a batch-1 instance's capacity from its profile (1000 / p50 at batch 1).
    const info = await new RegistryClient(stack.nc, stack.stores).info(STEP_MODEL);
    const b1 = info.variants.find((v) => v.maxBatch === 1 && v.precision === 'fp32')!;
    const capacity = 1000 / Object.values(b1.profiles)[0].latency!.find((l) => l.batch === 1)!.p50Ms;
    const steps: string[] = [];
    // The responder last: an overloaded responder keeps computing its backlog for seconds after its
    // step (nothing sheds it), and that would take CPU from whatever ran next.
    const stepTargets: [string, Target][] = [
      [`system, model ${STEP_MODEL}`, query({ model: STEP_MODEL })],
      [`system, model-less (accuracy >= ${STEP_ACCURACY})`, query({ task: 'digit-classification' }, STEP_ACCURACY)],
      [`hand-written responder (${STEP_MODEL})`, { subject: 'bench.responder-wide', body: {} }],
    ];
    for (const [name, target] of CONCURRENCY.length === 1 && !ONLY_STEP ? [] : stepTargets) {
      process.stderr.write(`open-loop step: ${name}\n`);
      const r = await ask({ type: 'open', target, schedule: [{ rate: 0.1 * capacity, seconds: STEP.low }, { rate: 2 * capacity, seconds: STEP.high }], measureFromS: STEP.low, objectiveMs: OBJECTIVE_MS });
      r.seconds = STEP.high;
      row(name, 'step 10%->200%', r);
      steps.push(`${name}: ${stepSummary(r, STEP.low)}`);
    }
    client.send({ type: 'exit' });
    const table = formatTable(['load', 'path', 'offered q/s', 'goodput q/s', 'not good', 'p50 ms', 'p99 ms', 'errors (measured part)'], rows);
    if (ONLY_STEP) { process.stdout.write(`${formatTable(['load', 'path', 'offered q/s', 'goodput q/s', 'not good', 'p50 ms', 'p99 ms', 'errors'], rows)}\n${steps.join('\n')}\n`); return; }
    if (CONCURRENCY.length === 1) { process.stdout.write(`${formatTable(['load', 'path', 'offered q/s', 'goodput q/s', 'not good', 'p50 ms', 'p99 ms', 'errors'], rows)}\n`); return; }
    const low = (i: number) => results.get(`1:${targets[i][0]}`)!.p50;
    const ortMs = ortSeq.p50;
    const base = low(1) - ortMs;
    const ratios = targets.slice(2).map(([n], i) => `${n}: x${((low(i + 2) - ortMs) / base).toFixed(2)}`).join('; ');
    const g64 = (i: number) => results.get(`64:${targets[i][0]}`)!.good / MEASURE_S;
    const text = [
      '## Saturation (bench/saturation.ts)',
      '',
      `Machine: ${machineLine()}; load average before the run ${loadavg()[0].toFixed(2)}. Run: ${new Date().toISOString()}.`,
      '',
      `Method: \`npm run bench:saturation\` starts what \`infaas up\` starts in one process (embedded nats-server, registrar, dispatcher,`,
      `profiler and a worker of 2 cores with its autoscaler on), registers ${MODELS.join(', ')} (fp32 and int8, opt all, max batch 1`,
      `and 32, 1 thread: 4 variants each) and forks three processes: the load client, a bare NATS echo responder and the hand-written`,
      `responder (bench/responder.ts: one ORT session of ${MODEL}, same options, no batching). The client sends single 28x28 images`,
      `(MessagePack, the same body for every path) with a ${OBJECTIVE_MS} ms objective. Closed loop: N requests outstanding, ${WARMUP_S} s warm-up then`,
      `${MEASURE_S} s measured, paths one after another (the system keeps its instances between runs, as it would in service). Step: open loop,`,
      `${STEP.low} s at 10 % then ${STEP.high} s at 200 % of the capacity of a batch-1 instance of ${STEP_MODEL} (${capacity.toFixed(0)} q/s, 1000 / its profiled`,
      `batch-1 p50; cnn-small's would exceed what the bus and the client can carry here), model queries and model-less queries whose accuracy`,
      `floor only ${STEP_MODEL} meets, against a second hand-written responder around ${STEP_MODEL}; the table's step rows cover the 200 % part.`,
      '"goodput" counts answers within the objective; "not good"',
      'is the share of queries sent in the measured part that got an error, a late answer or none. ONNX Runtime in-process (same file and',
      `options, in the client process): batch 1 one call at a time p50 ${fmtMs(ortSeq.p50)} ms; batch 32 ${(ort32.sent / ort32.seconds).toFixed(0)} images/s.`,
      'Caveat: all processes and nats-server share the machine\'s cores; the client\'s own CPU is paid out of the same budget for every path.',
      'Step recovery: goodput per second after the step; "steady" is the mean of the second half; it is reached at the first second from',
      'which no later second falls below 75 % of it.',
      '',
      '```', table, '```', '',
      `At 64 outstanding, goodput relative to the hand-written responder: ${targets.slice(2).map(([n], i) => `${n} x${(g64(i + 2) / g64(1)).toFixed(2)}`).join('; ')}.`,
      `Low load (1 outstanding), p50 overhead over in-process ONNX Runtime relative to the responder's (${fmtMs(base)} ms): ${ratios}.`,
      `Step recovery: ${steps.join(' ')}`,
    ].join('\n');
    process.stdout.write(`${text}\n`);
    if (argv.includes('--write')) writeSection(fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url)), 'saturation', text);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function ms(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '-' : fmtMs(v);
}

function pct(n: number, of: number): string {
  return of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`;
}

/**
 * Goodput per second after the step; "steady" is the mean of its second half, and it is reached at
 * the first second from which no later second falls below 75 % of it (seconds vary by +-20 % here).
 */
function stepSummary(r: RunResult, from: number): string {
  const after = r.windows.slice(from).map((w) => w.good);
  const tail = after.slice(Math.floor(after.length / 2));
  const steady = tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
  let recovered = after.length;
  for (let i = after.length - 1; i >= 0 && after[i] >= 0.75 * steady && steady > 0; i--) recovered = i;
  return `steady ${steady.toFixed(0)} q/s, reached in ${steady > 0 ? `${recovered} s` : '- (never)'} (per second: ${after.join(' ')}).`;
}
