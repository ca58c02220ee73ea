// Honesty check of the trace simulator: the same trace against a live system (infaas bench, client
// in its own process) and through the simulator with that system's profiles, workers and
// instances; per window and overall, how far apart goodput, violations and cost are.
//
// While the live run lasts, this process samples the workers' and instances' KV records once a
// second and measures two things the simulator cannot know from profiles: how much slower than
// profiled inference ran (observed over profiled batch time, weighted by runs) and each query's
// CPU cost outside inference on the worker (process CPU less inference CPU, per query served).
// The simulator runs twice: with profiles alone, and with those two measurements.
//
// Usage: npm run bench:sim-vs-live -- -s nats://127.0.0.1:4222 [--shape fluctuating] [--rate-scale 7.5]
//        [--duration 60] [--latency 20] [--min-accuracy 0.95] [--policy infaas] [--write]
// (credentials: the data directory's, as infaas bench; start the system with `infaas up`.)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { readEnv } from '../cluster/config.js';
import { startStack } from '../cluster/local.js';
import { kvValues, type Stores } from '../runtime/bus/store.js';
import { silentLogger } from '../runtime/log.js';
import { formatTable } from '../runtime/table.js';
import type { InstanceRecord, WorkerRecord } from '../schemas/worker.js';
import type { WindowStats } from './live/stats.js';
import { machineLine, writeSection } from './machine.js';
import { readLiveProfiles } from './sim/profiles.js';
import { simulate, type SimReport } from './sim/simulate.js';
import { namedShape } from './trace.js';

const BIN = fileURLToPath(new URL('../bin/infaas.js', import.meta.url));
const DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));

interface Opts { nats: string; shape: string; rateScale: number; duration: number; warmup: number; window: number; latency: number; minAccuracy?: number; policy: string; seed: number; write?: boolean }

const program = new Command('sim-vs-live')
  .requiredOption('-s, --nats <url>', 'the live system (infaas up)')
  .option('--shape <name>', 'load shape', 'fluctuating')
  .option('--rate-scale <x>', "multiply the shape's rates", Number, 7.5)
  .option('--duration <s>', 'measured seconds', Number, 60)
  .option('--warmup <s>', 'seconds before the measurement', Number, 2)
  .option('--window <s>', 'seconds per window', Number, 2)
  .option('--latency <ms>', 'latency objective', Number, 20)
  .option('--min-accuracy <x>', 'accuracy floor', Number)
  .option('--policy <name>', 'the policy the live system runs (infaas up --policy)', 'infaas')
  .option('--seed <n>', 'arrivals seed', Number, 1)
  .option('--write', 'write the result into docs/benchmarks.md');

interface Sample { cpuMs: number; hostMs: number; inferenceCpuMs: number; served: number; observedMs: number; profiledMs: number }

/** One second of the live workers: process CPU, inference CPU (observed batch time x threads), queries served. */
async function sampleFleet(stores: Stores): Promise<Sample> {
  const s: Sample = { cpuMs: 0, hostMs: 0, inferenceCpuMs: 0, served: 0, observedMs: 0, profiledMs: 0 };
  for (const w of (await kvValues<WorkerRecord>(stores.workers)).values()) {
    if (Date.now() - w.heartbeatAt < 5000) { s.cpuMs += w.usage.cpuCores * 1000; s.hostMs += w.usage.hostCpu * availableParallelism() * 1000; }
  }
  for (const i of (await kvValues<InstanceRecord>(stores.instances)).values()) {
    if (Date.now() - i.updatedAt > 5000) continue;
    s.served += i.serviceRate;
    for (const l of i.latency) {
      s.observedMs += l.runs * l.observedMs;
      s.profiledMs += l.runs * l.profiledMs;
      s.inferenceCpuMs += l.runs * l.observedMs * i.threads;
    }
  }
  return s;
}

function runBench(o: Opts, json: string): Promise<void> {
  const args = [BIN, 'bench', '-s', o.nats, '--shape', o.shape, '--rate-scale', String(o.rateScale), '--duration', String(o.duration),
    '--warmup', String(o.warmup), '--window', String(o.window), '--latency', String(o.latency), '--seed', String(o.seed), '--json', json,
    ...(o.minAccuracy !== undefined ? ['--min-accuracy', String(o.minAccuracy)] : [])];
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`infaas bench exited with ${code}`))));
  });
}

const share = (n: number, of: number) => (of > 0 ? n / of : 0);
const pts = (x: number) => `${(100 * x).toFixed(1)} %`;

async function main(o: Opts): Promise<void> {
  const env = readEnv();
  const stack = await startStack({ log: silentLogger, natsUrl: o.nats, dataDir: env.dataDir, controller: false, worker: false, name: 'infaas-sim-vs-live', access: env.access });
  let live: { windows: WindowStats[]; overall: WindowStats & { provisionedCost?: number | null } };
  let file;
  const samples: Sample[] = [];
  try {
    file = await readLiveProfiles(stack.stores, machineLine());
    const json = join(mkdtempSync(join(tmpdir(), 'sim-vs-live-')), 'live.json');
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await new Promise((r) => setTimeout(r, 1000));
        samples.push(await sampleFleet(stack.stores).catch(() => ({ cpuMs: 0, hostMs: 0, inferenceCpuMs: 0, served: 0, observedMs: 0, profiledMs: 0 })));
      }
    })();
    await runBench(o, json).finally(() => { sampling = false; });
    await sampler;
    live = JSON.parse(readFileSync(json, 'utf8')) as typeof live;
  } finally {
    await stack.stop();
  }
  // Only seconds with real traffic say anything about per-query cost.
  const busy = samples.filter((s) => s.served >= 20);
  const sum = (f: (s: Sample) => number) => busy.reduce((a, s) => a + f(s), 0);
  const slowdown = Math.max(1, share(sum((s) => s.observedMs), sum((s) => s.profiledMs)) || 1);
  const loopMs = Math.max(0, share(sum((s) => s.cpuMs - s.inferenceCpuMs), sum((s) => s.served)));
  // The host's other processes (the bench client, nats-server): host CPU less the worker's, in cores.
  const external = Math.max(0, share(sum((s) => s.hostMs - s.cpuMs), busy.length * 1000));
  const w = file.workers.find((x) => x.hardwareClass === file.hardwareClass);
  if (!w) throw new Error(`no live worker of class ${file.hardwareClass}`);
  const trace = namedShape(o.shape, o.warmup + o.duration, o.rateScale, o.seed);
  const run = (slow: number, loop: number, ext: number): SimReport => simulate({
    profiles: file.profiles.filter((p) => p.hardwareClass === file.hardwareClass),
    classes: [{ name: w.hardwareClass, instanceType: 'this machine', pricePerHour: w.pricePerHour, threads: w.threads, memoryBytes: w.memoryBytes, startMs: 2000 }],
    initialWorkers: [{ hardwareClass: w.hardwareClass, count: file.workers.filter((x) => x.hardwareClass === w.hardwareClass).length }],
    initialInstances: file.instances.filter((i) => i.hardwareClass === w.hardwareClass),
    autoscaleClasses: [], trace,
    mix: [{ name: 'q', weight: 1, target: { task: file.profiles[0].task }, latencyMs: o.latency, ...(o.minAccuracy !== undefined ? { minAccuracy: o.minAccuracy } : {}) }],
    seed: o.seed, policy: o.policy, windowS: o.window, warmupS: o.warmup, slowdown: slow, workerLoopMs: loop, externalCores: ext,
  });
  const plain = run(1, 0, 0);
  const calibrated = run(slowdown, 0, external);
  const row = (name: string, x: WindowStats & { provisionedCost?: number | null }, windows: WindowStats[]) => {
    const measured = windows.filter((v) => !v.warmup);
    const lw = live.windows.filter((v) => !v.warmup);
    // Mean absolute difference of per-window goodput share against the live run.
    const mad = measured.reduce((a, v, i) => a + Math.abs(share(v.good, v.sent) - share(lw[i]?.good ?? 0, lw[i]?.sent ?? 0)), 0) / Math.max(1, measured.length);
    return [name, x.sent, pts(share(x.good, x.sent)), pts(share(x.violations, x.sent)), x.p99 === null ? '-' : x.p99.toFixed(1),
      x.provisionedCost == null ? '-' : `$${x.provisionedCost.toExponential(2)}`, `$${x.cost.toExponential(2)}`, Object.keys(x.variants).length, x === live.overall ? '-' : pts(mad)];
  };
  const headers = ['run', 'sent', 'within objective', 'violations', 'p99 ms', 'provisioned cost', 'busy cost', 'variants', 'per-window goodput gap'];
  const rows = [row('live', live.overall, live.windows), row('simulated, profiles only', plain.overall, plain.windows), row('simulated, calibrated', calibrated.overall, calibrated.windows)];
  const gap = (r: SimReport) => Math.abs(share(r.overall.good, r.overall.sent) - share(live.overall.good, live.overall.sent));
  const method = [
    `Method: \`npm run bench:sim-vs-live -- -s URL --shape ${o.shape} --rate-scale ${o.rateScale} --duration ${o.duration} --latency ${o.latency}${o.minAccuracy !== undefined ? ` --min-accuracy ${o.minAccuracy}` : ''}\`: the trace (${trace.description}, seed ${o.seed}) against the live system with \`infaas bench\` in its own process, then through the simulator with the live system's profiles, worker (${w.threads} threads, $${w.pricePerHour}/h) and loaded instances, policy ${o.policy}. ${machineLine()}; ${new Date().toISOString().slice(0, 10)}.`,
    `Measured during the live run (${busy.length} seconds with traffic): inference ran ${slowdown.toFixed(2)}x its profile on average; other processes on the host (the bench client, nats-server) kept ${external.toFixed(2)} cores busy. "Calibrated" gives the simulator both (slowdown, externalCores). Not used: the worker process's CPU outside inference, ${loopMs.toFixed(3)} ms per query served, which also counts ONNX Runtime's threads spinning after each run and the process's fixed background work, so it overstates a query's cost at low rates (fed in as workerLoopMs it made the simulator refuse half the queries the live system served).`,
  ];
  const verdict = `Overall goodput share: profiles only ${pts(gap(plain))} from live, calibrated ${pts(gap(calibrated))} from live (tolerance we hold the calibrated simulator to: 5 points). Variants that answered, live: ${top(live.overall.variants)}; simulated (calibrated): ${top(calibrated.overall.variants)}.`;
  const table = formatTable(headers, rows);
  process.stdout.write(`${method.join('\n')}\n\n${table}\n\n${verdict}\n`);
  if (o.write) {
    const md = [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
    writeSection(DOC, 'sim-vs-live', `## Simulator against the live system (bench/sim-vs-live.ts)\n\n${method.join('\n\n')}\n\n${md}\n\n${verdict}`);
    process.stdout.write(`wrote ${resolve(DOC)}\n`);
  }
}

function top(v: Record<string, number>): string {
  return Object.entries(v).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => `${k} ${n}`).join(', ');
}

program.action((o: Opts) => main(o).catch((e: Error) => { process.stderr.write(`sim-vs-live: ${e.message}\n`); process.exitCode = 1; }));
await program.parseAsync();
