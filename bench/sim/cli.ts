// `npm run sim`: the trace simulator from the command line. Reads profiles from a live system's
// metadata store (-s URL) or a profile file, runs one or more policies on the same trace, and
// prints (and writes) a side-by-side table with ratios against the model-less policy.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { policyNames } from '../../actors/dispatcher/baselines.js';
import { createLogger } from '../../runtime/log.js';
import { machineLine, writeSection } from '../machine.js';
import { fileURLToPath } from 'node:url';
import { flatTrace, namedShape, parseMix, parseTrace, scaleTrace, shapeNames, type QueryClass, type RateTrace } from '../trace.js';
import { paperClasses, profilesForClasses, type HardwareClass } from './hardware.js';
import { parseProfileFile, readLiveProfiles, type ProfileFile } from './profiles.js';
import { simulate, type SimReport } from './simulate.js';
import { comparisonMarkdown, comparisonTable, summaryLine } from './report.js';

const DOC = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

const num = (what: string, min = 0) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${what} must be a number >= ${min}`);
  return n;
};

interface Opts {
  nats?: string; profiles?: string; exportProfiles?: string; credentials?: string;
  shape?: string; trace?: string; rate?: number; duration?: number; rateScale: number; timeScale: number;
  task?: string; model?: string; latency: number; minAccuracy?: number; mix?: string;
  policy: string; likeLive?: boolean; workers?: string; autoscale?: string; maxWorkers?: number; minWorkers?: number; startMs?: number;
  window?: number; warmup: number; fixedClass?: string; slowdown?: number; workerLoopMs?: number; externalCores?: number; seed: number; json?: string; charts?: string; write?: string; hop?: number; jitter?: number;
}

const program = new Command('sim').description('Trace simulator: the live policies against modelled workers (docs/simulator.md)')
  .option('-s, --nats <url>', "read profiles from this live system's metadata store")
  .option('--credentials <path>', 'NATS credentials for -s (default on loopback: the data directory\'s operator credentials)')
  .option('--profiles <file>', 'read profiles from a file written by --export-profiles')
  .option('--export-profiles <file>', 'write the profiles read with -s to a file, then exit')
  .option('--shape <name>', `a load shape: ${shapeNames.join(', ')}`)
  .option('--trace <file>', 'a trace file: "seconds,rate" lines (CSV) or JSON [{t, rate}]')
  .option('--rate <q>', 'flat Poisson load at q queries/s', num('--rate'))
  .option('--duration <s>', 'seconds of trace (default: the trace file\'s; 600 for a shape)', num('--duration', 1e-3))
  .option('--rate-scale <x>', 'multiply the trace\'s rates', num('--rate-scale'), 1)
  .option('--time-scale <k>', 'stretch the trace\'s time (a 24 h trace in 10 min: 0.00694)', num('--time-scale', 1e-9), 1)
  .option('--task <task>', 'the queries\' task (default: the first profile\'s)')
  .option('--model <model>', 'queries name this model instead of a task')
  .option('--latency <ms>', 'latency objective', num('--latency', 1e-3), 50)
  .option('--min-accuracy <x>', 'accuracy floor', num('--min-accuracy'))
  .option('--mix <file>', 'a query mix (JSON, as infaas bench --mix) instead of one class')
  .option('--policy <names>', `comma-separated: ${policyNames.join(', ')} (the first is the reference of the ratios)`, 'infaas,fixed')
  .option('--fixed-class <class>', 'fixed and clipper: the class the developer deployed the fixed variant on (default: cpu without --like-live)')
  .option('--like-live', 'one class like the live workers (their threads, memory and price; 2 s start), no accelerators')
  .option('--workers <spec>', 'initial workers per class, e.g. cpu=1,gpu=0 (default cpu=1; --like-live: as exported)')
  .option('--autoscale <classes>', 'classes the VM-autoscaler may add (default: every class; --like-live: none)')
  .option('--max-workers <n>', 'VM-autoscaler: at most this many workers per class (default 8)', num('--max-workers', 1))
  .option('--min-workers <n>', 'VM-autoscaler: keep at least this many workers per autoscaled class (default 0; live default 1)', num('--min-workers'))
  .option('--start-ms <ms>', 'worker start time for every class (default: the class\'s)', num('--start-ms'))
  .option('--slowdown <x>', 'inference runs x times its profile (default 1)', num('--slowdown', 1))
  .option('--worker-loop-ms <ms>', "each query's cost on its worker's event loop (default 0)", num('--worker-loop-ms'))
  .option('--external-cores <n>', "cores other processes keep busy on each worker's machine (default 0)", num('--external-cores'))
  .option('--hop <ms>', 'one-way bus hop (default 0.3)', num('--hop'))
  .option('--jitter <x>', 'relative spread of batch times (default 0.05)', num('--jitter'))
  .option('--window <s>', 'seconds per statistics window (default: duration / 200, at least 1)', num('--window', 1e-3))
  .option('--warmup <s>', 'seconds left out of the overall statistics', num('--warmup'), 0)
  .option('--seed <n>', 'seed of arrivals, mix and jitter', num('--seed'), 1)
  .option('--json <file>', 'write every policy\'s report (windows, decisions) as JSON')
  .option('--write <name>', 'write the method and table into docs/benchmarks.md (section sim-<name>)')
  .option('--charts <dir>', 'render charts of the runs into this directory (bench/charts.ts)')
  .action(async (o: Opts) => main(o).catch((e: Error) => { process.stderr.write(`sim: ${e.message}\n`); process.exitCode = 1; }));

async function loadProfiles(o: Opts): Promise<ProfileFile> {
  if (o.profiles && o.nats) throw new Error('give --profiles or -s, not both');
  if (o.profiles) return parseProfileFile(readFileSync(o.profiles, 'utf8'));
  if (!o.nats) throw new Error('no profiles: give -s URL (a running system) or --profiles FILE');
  const { startStack } = await import('../../cluster/local.js');
  const { readEnv } = await import('../../cluster/config.js');
  const env = readEnv();
  const log = createLogger({ level: 'warn' });
  const stack = await startStack({ log, natsUrl: o.nats, dataDir: env.dataDir, controller: false, worker: false, name: 'infaas-sim', access: { ...env.access, ...(o.credentials ? { credentials: resolve(o.credentials) } : {}) } });
  try { return await readLiveProfiles(stack.stores, machineLine()); } finally { await stack.stop(); }
}

function traceOf(o: Opts): RateTrace {
  const given = [o.shape, o.trace, o.rate].filter((x) => x !== undefined).length;
  if (given > 1) throw new Error('give one of --shape, --trace, --rate');
  let t: RateTrace;
  if (o.trace) t = parseTrace(readFileSync(o.trace, 'utf8'), o.trace, o.duration);
  else if (o.rate !== undefined) t = flatTrace(o.rate, o.duration ?? 60);
  else t = namedShape(o.shape ?? 'fluctuating', o.duration ?? 600, 1, o.seed);
  return scaleTrace(t, { rate: o.rateScale, time: o.timeScale });
}

function mixOf(o: Opts, f: ProfileFile): QueryClass[] {
  if (o.mix) return parseMix(readFileSync(o.mix, 'utf8'));
  const target = o.model ? { model: o.model } : { task: o.task ?? f.profiles[0].task };
  return [{ name: Object.values(target)[0], weight: 1, target, latencyMs: o.latency, ...(o.minAccuracy !== undefined ? { minAccuracy: o.minAccuracy } : {}) }];
}

function counts(spec: string | undefined, classes: readonly HardwareClass[]): { hardwareClass: string; count: number }[] {
  if (!spec) return [];
  return spec.split(',').map((kv) => {
    const [name, n] = kv.split('=');
    if (!classes.some((c) => c.name === name) || !(Number(n) >= 0)) throw new Error(`--workers: "${kv}" is not <class>=<count> with a class of ${classes.map((c) => c.name).join(', ')}`);
    return { hardwareClass: name, count: Number(n) };
  });
}

async function main(o: Opts): Promise<void> {
  const file = await loadProfiles(o);
  if (o.exportProfiles) {
    writeFileSync(o.exportProfiles, `${JSON.stringify(file, null, 1)}\n`);
    process.stdout.write(`wrote ${file.profiles.length} profiles (${file.hardwareClass}) and ${file.workers.length} workers to ${o.exportProfiles}\n`);
    return;
  }
  const trace = traceOf(o);
  const mix = mixOf(o, file);
  let classes: HardwareClass[];
  let profiles;
  let initial: { hardwareClass: string; count: number }[];
  let autoscale: string[];
  let initialInstances: { variant: string; hardwareClass: string }[] = [];
  if (o.likeLive) {
    const w = file.workers.find((x) => x.hardwareClass === file.hardwareClass);
    if (!w) throw new Error(`--like-live: the profile source lists no live worker of class ${file.hardwareClass}`);
    classes = [{ name: w.hardwareClass, instanceType: 'this machine', pricePerHour: w.pricePerHour, threads: w.threads, memoryBytes: w.memoryBytes, startMs: o.startMs ?? 2000 }];
    profiles = file.profiles.filter((p) => p.hardwareClass === file.hardwareClass);
    initial = counts(o.workers, classes);
    if (initial.length === 0) initial = [{ hardwareClass: w.hardwareClass, count: file.workers.filter((x) => x.hardwareClass === w.hardwareClass).length }];
    autoscale = o.autoscale ? o.autoscale.split(',') : [];
    // What the live system had loaded (infaas up's demonstration leaves an instance).
    initialInstances = file.instances.filter((i) => i.hardwareClass === w.hardwareClass);
  } else {
    classes = paperClasses.map((c) => ({ ...c, ...(o.startMs !== undefined ? { startMs: o.startMs } : {}) }));
    profiles = profilesForClasses(file.profiles, file.hardwareClass, classes);
    initial = counts(o.workers ?? 'cpu=1', classes);
    autoscale = o.autoscale ? o.autoscale.split(',') : classes.map((c) => c.name);
  }
  const fixedClass = o.fixedClass ?? (o.likeLive ? undefined : 'cpu');
  const policies = o.policy.split(',').map((s) => s.trim()).filter(Boolean);
  const lines: string[] = [];
  const say = (line: string) => { lines.push(line.trim()); process.stderr.write(line); };
  say(`Method: trace simulator (docs/simulator.md), same policy functions as the live system; profiles measured on ${file.machine}${o.profiles ? ` (${o.profiles})` : ` (live: ${o.nats})`}.\n`);
  say(`Trace: ${trace.description}. Classes: ${classes.map((c) => `${c.name} (${c.instanceType}, $${c.pricePerHour}/h, ${c.threads} slots, start ${c.startMs / 1000} s)`).join('; ')}. Initial workers: ${initial.map((x) => `${x.hardwareClass}=${x.count}`).join(', ')}${fixedClass ? `; fixed variants on ${fixedClass}` : ''}${initialInstances.length ? ` with ${initialInstances.map((i) => i.variant).join(', ')} loaded` : ''}; autoscaled: ${autoscale.join(', ') || 'none'}.\n`);
  say(`Queries: ${mix.map((c) => `${c.name} (${c.latencyMs} ms${c.minAccuracy !== undefined ? `, accuracy >= ${c.minAccuracy}` : ''}, weight ${c.weight})`).join('; ')}. Seed ${o.seed}.\n`);
  const reports: SimReport[] = [];
  for (const policy of policies) {
    const started = performance.now();
    const r = simulate({
      profiles, classes, initialWorkers: initial, initialInstances, autoscaleClasses: autoscale, trace, mix, seed: o.seed, policy,
      // The live default keeps one worker of every managed class: here the initial workers are the floor.
      cluster: { minWorkers: o.minWorkers ?? 0, ...(o.maxWorkers !== undefined ? { maxWorkers: o.maxWorkers } : {}) },
      ...(o.hop !== undefined ? { hopMs: o.hop } : {}), ...(o.slowdown !== undefined ? { slowdown: o.slowdown } : {}),
      ...(o.workerLoopMs !== undefined ? { workerLoopMs: o.workerLoopMs } : {}), ...(o.externalCores !== undefined ? { externalCores: o.externalCores } : {}),
      ...(fixedClass !== undefined ? { fixedClass } : {}), ...(o.jitter !== undefined ? { jitter: o.jitter } : {}),
      ...(o.window !== undefined ? { windowS: o.window } : {}), warmupS: o.warmup,
      onProgress: process.stderr.isTTY ? (s, d, n) => process.stderr.write(`\r${policy}: ${s.toFixed(0)}/${d} s simulated, ${n} queries`) : undefined,
    });
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    say(`${summaryLine(r)}; ${((performance.now() - started) / 1000).toFixed(1)} s to simulate\n`);
    reports.push(r);
  }
  process.stdout.write(`${comparisonTable(reports)}\n`);
  if (o.write) {
    const command = `npm run sim -- ${process.argv.slice(2).filter((a, i, all) => a !== '--write' && all[i - 1] !== '--write').join(' ')}`;
    writeSection(DOC, `sim-${o.write}`, [`### Simulated: ${o.write}`, '', `Command: \`${command}\` (${machineLine()}; ${new Date().toISOString().slice(0, 10)}).`, '',
      ...lines.map((l) => `${l}\n`), comparisonMarkdown(reports)].join('\n'));
    process.stderr.write(`wrote section sim-${o.write} of ${DOC}\n`);
  }
  if (o.json) writeFileSync(o.json, `${JSON.stringify({ method: { command: process.argv.slice(2).join(' '), machine: machineLine(), profilesFrom: file.machine }, reports }, null, 1)}\n`);
  if (o.charts) {
    const { renderCharts } = await import('../charts.js');
    const { fromSimReport } = await import('./report.js');
    const out = await renderCharts(reports.map(fromSimReport), `${trace.name}: ${policies.join(' vs ')}`, o.charts, { png: true });
    process.stderr.write(`charts: ${out.files.length} files in ${o.charts}${out.note ? ` (${out.note})` : ''}\n`);
  }
}

await program.parseAsync();
