// Batching benchmark: open-loop Poisson load at several offered rates against one zoo model served
// by a worker (batching variant, max batch 32; unbatched variant, max batch 1) and, in the same run,
// by direct in-process ONNX Runtime behind a FIFO queue; throughput, p50/p99, errors, mean batch.
// Usage: npm run bench:batching [-- --write] [--quick] [--model cnn-small]
// The load comes from a child process (this file with --generator), so that generating it does not
// run on the worker's event loop; the direct baseline runs in that child, as a client would.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from 'nats';
import { startProfiler } from '../actors/profiler/index.js';
import { startRegistrar } from '../actors/registrar/index.js';
import { startWorker } from '../actors/worker/index.js';
import { RegistryClient, type ModelInfo } from '../runtime/client/registry-client.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { ErrorCode, InfaasError } from '../schemas/errors.js';
import { startLocalNats } from '../runtime/bus/local-nats.js';
import { createLogger } from '../runtime/log.js';
import { closeBus, connectBus } from '../runtime/bus/nats.js';
import { createSession, ort, type SessionConfig } from '../runtime/onnx/onnx-session.js';
import { objectBytes, openStores } from '../runtime/bus/store.js';
import { formatTable } from '../runtime/table.js';
import { WorkerClient } from '../runtime/client/worker-client.js';
import { zooModelBytes, zooModels, zooRequest, zooValidationSet } from '../zoo/index.js';
import { loadSplit } from '../zoo/data.js';
import { machineLine, writeSection } from './machine.js';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
/** cnn-small by default: the report says why ("Why cnn-small"). */
const MODEL = argv.includes('--model') ? argv[argv.indexOf('--model') + 1] : 'cnn-small';
const HARDWARE_CLASS = 'cpu-2t-bench';
/** Generous, so that the table measures latency rather than drops. */
const DEADLINE_MS = 1000;
const WARMUP_S = QUICK ? 0.5 : 1;
const MEASURE_S = QUICK ? 1 : 3;
/** Offered loads as fractions of the unbatched worker's measured capacity. */
const LOADS = QUICK ? [0.25, 1, 2] : [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 4];
const CALIBRATION = { warmupS: QUICK ? 0.5 : 1, seconds: QUICK ? 1 : 2, concurrency: 64 };
const IMAGES = 256;
const QUIET = { sampleMs: 300, threshold: 0.15, maxWaitMs: QUICK ? 1000 : 20_000 };
const TARGETS = { batched: 'worker, max batch 32', single: 'worker, max batch 1', direct: 'direct ORT, FIFO' } as const;
type TargetName = keyof typeof TARGETS;

interface Setup { url: string; workerId: string; batched: string; single: string; object: string; session: SessionConfig }
interface RunSpec { target: TargetName; rate: number; seed: number; warmupS: number; measureS: number }
interface LoadResult { offered: number; achieved: number; completed: number; p50: number; p99: number; lagP99: number; errors: [string, number][] }
type ToChild = { type: 'setup'; setup: Setup } | { type: 'run'; spec: RunSpec } | { type: 'calibrate'; target: TargetName } | { type: 'exit' };
type FromChild = { type: 'ready' } | { type: 'mark'; which: 'start' | 'end' } | { type: 'result'; result: LoadResult } | { type: 'capacity'; qps: number };

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]);

/** Seeded uniform (0,1): the same arrival pattern for every target at a given load. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 0.5) / 4294967296; };
}

// ---------------------------------------------------------------- the load generator (child)

type Send = (image: number) => Promise<void>;

/**
 * Open loop: arrivals at precomputed Poisson instants, sent whatever the answers do, on a 1 ms
 * timer tick (spinning for finer timing would take a core from the system under test). Latency
 * counts from the actual send; `lagP99` says how late sends were against their schedule.
 */
async function openLoop(send: Send, spec: RunSpec, mark: (which: 'start' | 'end') => void): Promise<LoadResult> {
  const random = rng(spec.seed);
  const arrivals: number[] = [];
  for (let t = -Math.log(random()) / spec.rate; t < spec.warmupS + spec.measureS; t += -Math.log(random()) / spec.rate) arrivals.push(t * 1000);
  const [from, to] = [spec.warmupS * 1000, (spec.warmupS + spec.measureS) * 1000];
  const shots: { at: number; sent: number; end: number; error?: string }[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  const marks = [setTimeout(() => mark('start'), from), setTimeout(() => mark('end'), to)];
  for (let next = 0; next < arrivals.length;) {
    const now = performance.now() - t0;
    for (; next < arrivals.length && arrivals[next] <= now; next++) {
      const shot: (typeof shots)[number] = { at: arrivals[next], sent: now, end: NaN };
      shots.push(shot);
      pending.push(send(next % IMAGES).then(
        () => { shot.end = performance.now() - t0; },
        (err: unknown) => { shot.end = performance.now() - t0; shot.error = err instanceof InfaasError ? err.code : (err as Error).message; },
      ));
    }
    if (next < arrivals.length) await delay(Math.max(1, Math.floor(arrivals[next] - (performance.now() - t0))));
  }
  await Promise.all(pending);
  await delay(Math.max(0, to - (performance.now() - t0)) + 5);
  marks.forEach(clearTimeout);
  const measured = shots.filter((s) => s.at >= from && s.at < to);
  const latencies = measured.filter((s) => !s.error).map((s) => s.end - s.sent).sort((a, b) => a - b);
  const completed = shots.filter((s) => !s.error && s.end >= from && s.end < to).length;
  const errors = new Map<string, number>();
  for (const s of measured) if (s.error) errors.set(s.error, (errors.get(s.error) ?? 0) + 1);
  return {
    offered: measured.length / spec.measureS, achieved: completed / spec.measureS, completed,
    p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99),
    lagP99: percentile(measured.map((s) => s.sent - s.at).sort((a, b) => a - b), 0.99), errors: [...errors],
  };
}

/** Closed loop with many queries outstanding: the most a target serves, whatever the latency (after a warm-up). */
async function capacity(send: Send, c: typeof CALIBRATION): Promise<number> {
  const start = performance.now();
  const [from, end] = [start + c.warmupS * 1000, start + (c.warmupS + c.seconds) * 1000];
  let done = 0;
  await Promise.all(Array.from({ length: c.concurrency }, async (_, k) => {
    for (let i = k; performance.now() < end; i += c.concurrency) {
      await send(i % IMAGES);
      const now = performance.now();
      if (now >= from && now < end) done++;
    }
  }));
  return done / c.seconds;
}

/** Direct ONNX Runtime: one session.run per query, FIFO in this process; no NATS, no batching. */
function directSend(session: ort.InferenceSession, images: Float32Array): Send {
  const tensors = Array.from({ length: IMAGES }, (_, i) => new ort.Tensor('float32', images.slice(i * 784, (i + 1) * 784), [1, 1, 28, 28]));
  const queue: { image: number; deadline: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  let running = false;
  const pump = async (): Promise<void> => {
    if (running) return;
    running = true;
    while (queue.length > 0) {
      const q = queue.shift()!;
      // The worker's rule too: a query past its deadline is dropped, not computed.
      if (Date.now() > q.deadline) { q.reject(new InfaasError(ErrorCode.DeadlineExceeded, 'deadline passed in the queue')); continue; }
      try { await session.run({ image: tensors[q.image] }); q.resolve(); } catch (err) { q.reject(err as Error); }
    }
    running = false;
  };
  return (image) => new Promise<void>((resolve, reject) => { queue.push({ image, deadline: Date.now() + DEADLINE_MS, resolve, reject }); void pump(); });
}

async function generator(): Promise<void> {
  const log = createLogger({ level: 'warn' });
  const tell = (m: FromChild) => process.send!(m);
  let sends: Record<TargetName, Send> | undefined;
  let nc: NatsConnection | undefined;
  let session: ort.InferenceSession | undefined;
  process.on('message', (m: ToChild) => void (async () => {
    if (m.type === 'setup') {
      const s = m.setup;
      nc = await connectBus({ servers: s.url, name: 'bench-client', log });
      session = await createSession(await objectBytes((await openStores(nc)).repository, s.object), s.session);
      const images = loadSplit('validation', IMAGES).images;
      const pool = Array.from({ length: IMAGES }, (_, i) => arrayToTensor('float32', [1, 1, 28, 28], images.slice(i * 784, (i + 1) * 784)));
      const wc = new WorkerClient(nc);
      const via = (variant: string): Send => async (image) => { await wc.infer(s.workerId, { variant, inputs: { image: pool[image] } }, { deadlineMs: DEADLINE_MS }); };
      sends = { batched: via(s.batched), single: via(s.single), direct: directSend(session, images) };
      tell({ type: 'ready' });
    } else if (m.type === 'calibrate') {
      tell({ type: 'capacity', qps: await capacity(sends![m.target], CALIBRATION) });
    } else if (m.type === 'run') {
      tell({ type: 'result', result: await openLoop(sends![m.spec.target], m.spec, (which) => tell({ type: 'mark', which })) });
    } else {
      await session?.release();
      if (nc) await closeBus(nc);
      process.exit(0);
    }
  })().catch((err) => { log.error({ err }, 'generator failed'); process.exit(1); }));
}

// ---------------------------------------------------------------- the system and the report (parent)

/** CPU time in clock ticks (Linux /proc): the whole host's, its idle part, and our processes' (all their threads). */
interface CpuTicks { total: number; idle: number; ours: number }

function cpuTicks(pids: number[]): CpuTicks {
  let host: number[];
  try {
    host = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
  } catch {
    return { total: 0, idle: 0, ours: 0 }; // not Linux: the CPU columns read 0 and nothing waits
  }
  let ours = 0;
  for (const pid of pids.filter(Number.isInteger)) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ours += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return { total: host.reduce((a, b) => a + b, 0), idle: host[3] + host[4], ours };
}

/** Busy share of all cores between two readings, and the share taken by processes other than ours. */
function cpuShares(a: CpuTicks, b: CpuTicks): { busy: number; others: number } {
  const total = Math.max(1, b.total - a.total);
  const busy = 1 - (b.idle - a.idle) / total;
  return { busy, others: Math.max(0, busy - (b.ours - a.ours) / total) };
}

/** This machine is shared: waits (at most QUIET.maxWaitMs) until other processes leave the cores nearly idle. */
async function quietMachine(pids: number[]): Promise<void> {
  const until = performance.now() + QUIET.maxWaitMs;
  for (;;) {
    const a = cpuTicks(pids);
    await delay(QUIET.sampleMs);
    if (cpuShares(a, cpuTicks(pids)).others <= QUIET.threshold || performance.now() > until) return;
  }
}

/** The nats-server's pid, from the ports file it writes (named nats-server_<pid>.ports). */
function natsServerPid(storeDir: string): number {
  const file = readdirSync(join(storeDir, 'ports')).find((f) => /_\d+\.ports$/.test(f));
  return Number(file?.match(/_(\d+)\.ports$/)?.[1]);
}

/** The child's next message of a type, handling marks on the way. */
function nextMessage<T extends FromChild['type']>(child: ChildProcess, type: T, onMark: (which: 'start' | 'end') => void = () => {}): Promise<Extract<FromChild, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`load generator exited with code ${code}`));
    const onMessage = (m: FromChild) => {
      if (m.type === 'mark') return onMark(m.which);
      if (m.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m as Extract<FromChild, { type: T }>);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function registerModel(client: RegistryClient, name: string): Promise<ModelInfo> {
  const m = zooModels().find((z) => z.name === name);
  if (!m) throw new Error(`no zoo model ${name}`);
  const object = await client.upload(zooModelBytes(name), `${name}.onnx`);
  const validation = await client.upload(zooValidationSet(300), 'zoo validation split');
  try {
    return await client.register(zooRequest(m, object, validation));
  } finally {
    await client.deleteUpload(object);
    await client.deleteUpload(validation);
  }
}

interface Row { load: number; target: TargetName; r: LoadResult; meanBatch: number; loop: number; cpu: number; others: number; state: string }

const fmt = (ms: number | null) => (ms === null || Number.isNaN(ms) ? '-' : ms < 10 ? ms.toFixed(2) : ms.toFixed(0));
const errorText = (e: [string, number][]) => (e.length === 0 ? '0' : e.map(([k, n]) => `${n} ${k}`).join(', '));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'infaas-bench-'));
  const log = createLogger({ level: 'warn' });
  const server = await startLocalNats({ storeDir: join(dir, 'nats'), port: -1, log });
  const nc = await connectBus({ servers: server.url, name: 'bench-system', log });
  const stops: (() => Promise<unknown>)[] = [];
  let child: ChildProcess | undefined;
  try {
    const stores = await openStores(nc);
    const registrar = await startRegistrar({ nc, stores, log });
    stops.push(() => registrar.stop());
    // One profiling child at a time (threads 1), so that profiles are not measured under contention.
    const profiler = await startProfiler({
      nc, stores, log, hardwareClass: HARDWARE_CLASS, threads: 1,
      generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [1, 32], threads: [1], providers: ['cpu'] },
    });
    const info = await registerModel(new RegistryClient(nc, stores), MODEL);
    await profiler.stop();
    const batched = info.variants.find((v) => v.maxBatch === 32)!;
    const single = info.variants.find((v) => v.maxBatch === 1)!;
    const worker = await startWorker({ nc, stores, log, hardwareClass: HARDWARE_CLASS, threads: 2, autoscale: false });
    stops.push(() => worker.stop());
    const inst = { batched: await worker.load(batched.id), single: await worker.load(single.id) };
    const latency = Object.values(batched.profiles)[0]!.latency!;
    const [b1, b32] = [1, 32].map((b) => latency.find((l) => l.batch === b)!.p50Ms);

    child = fork(fileURLToPath(import.meta.url), ['--generator'], { execArgv: process.execArgv });
    const c = child;
    c.send({ type: 'setup', setup: {
      url: server.url, workerId: worker.id, batched: batched.id, single: single.id, object: single.object,
      session: { graphOptimizationLevel: single.optLevel, intraOpThreads: single.intraOpThreads, executionProvider: single.executionProvider },
    } } satisfies ToChild);
    await nextMessage(c, 'ready');
    const pids = [process.pid, c.pid!, natsServerPid(join(dir, 'nats'))];
    const run = async (target: TargetName, rate: number, load: number, seed: number, warmupS = WARMUP_S, measureS = MEASURE_S): Promise<Row> => {
      await quietMachine(pids);
      let [cpuAt, cpu, others, batchesAt, batches, loopAt, loop, state] = [cpuTicks(pids), 0, 0, 0, 0, performance.eventLoopUtilization(), 0, '-'];
      const counter = () => (target === 'direct' ? 0 : inst[target].batchesRun);
      const done = nextMessage(c, 'result', (which) => {
        if (which === 'start') { [cpuAt, batchesAt, loopAt] = [cpuTicks(pids), counter(), performance.eventLoopUtilization()]; return; }
        ({ busy: cpu, others } = cpuShares(cpuAt, cpuTicks(pids)));
        [batches, loop] = [counter() - batchesAt, performance.eventLoopUtilization(loopAt).utilization];
        if (target !== 'direct') state = inst[target].state;
      });
      c.send({ type: 'run', spec: { target, rate, seed, warmupS, measureS } } satisfies ToChild);
      const { result: r } = await done;
      return { load, target, r, meanBatch: target === 'direct' ? 1 : batches > 0 ? r.completed / batches : 0, loop, cpu, others, state };
    };

    // Warm every path (JIT, session arenas, NATS subscriptions), then measure what 100 % means.
    for (const t of Object.keys(TARGETS) as TargetName[]) await run(t, 200, 0, 7, 0, 1);
    const caps = {} as Record<TargetName, number>;
    for (const t of Object.keys(TARGETS) as TargetName[]) {
      await quietMachine(pids);
      c.send({ type: 'calibrate', target: t } satisfies ToChild);
      caps[t] = (await nextMessage(c, 'capacity')).qps;
      process.stderr.write(`${TARGETS[t]}: capacity ${caps[t].toFixed(0)} q/s (closed loop)\n`);
    }
    const ref = caps.single;

    const rows: Row[] = [];
    for (const [i, load] of LOADS.entries()) {
      for (const t of Object.keys(TARGETS) as TargetName[]) {
        const row = await run(t, ref * load, load, 1000 + i);
        rows.push(row);
        process.stderr.write(`${(load * 100).toFixed(0)}% ${TARGETS[t]}: ${row.r.achieved.toFixed(0)} q/s, p50 ${fmt(row.r.p50)} p99 ${fmt(row.r.p99)} ms, errors ${errorText(row.r.errors)}\n`);
      }
    }
    c.send({ type: 'exit' } satisfies ToChild);
    await new Promise((resolve) => { c.once('exit', resolve); setTimeout(resolve, 5000).unref(); });
    const md = report(rows, { b1, b32, caps });
    process.stdout.write(md + '\n');
    if (argv.includes('--write')) writeSection(new URL('../docs/benchmarks.md', import.meta.url).pathname, 'batching', md);
  } finally {
    if (child && child.exitCode === null) child.kill();
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await closeBus(nc);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(rows: Row[], x: { b1: number; b32: number; caps: Record<TargetName, number> }): string {
  const table = formatTable(
    ['load', 'offered q/s', 'system', 'achieved q/s', 'p50 ms', 'p99 ms', 'errors', 'mean batch', 'send lag p99', 'worker loop', 'host CPU', 'other CPU', 'instance'],
    rows.map((w) => [
      w.target === 'batched' ? `${(w.load * 100).toFixed(0)}%` : '', w.r.offered.toFixed(0), TARGETS[w.target], w.r.achieved.toFixed(0),
      fmt(w.r.p50), fmt(w.r.p99), errorText(w.r.errors), w.meanBatch.toFixed(1), fmt(w.r.lagP99), w.target === 'direct' ? '-' : `${(w.loop * 100).toFixed(0)}%`, `${(w.cpu * 100).toFixed(0)}%`, `${(w.others * 100).toFixed(0)}%`, w.state,
    ]),
  );
  const low = (t: TargetName) => rows.find((w) => w.target === t && w.load === LOADS[0])!.r.p50;
  const md = [
    '## Batching (bench/batching.ts)',
    '',
    `Machine: ${machineLine()}. Run: ${new Date().toISOString()}${QUICK ? ' (--quick)' : ''}.`,
    '',
    `Method: \`npm run bench:batching\` starts an embedded nats-server, the registrar and a profiler (class \`${HARDWARE_CLASS}\`, grid`,
    `fp32 x opt all x max batch 1/32 x 1 thread), registers \`${MODEL}\` (profiled p50: batch 1 ${x.b1.toFixed(3)} ms, batch 32 ${x.b32.toFixed(3)} ms,`,
    `${(x.b1 / (x.b32 / 32)).toFixed(1)}x cheaper per image) and starts a worker (2 threads, autoscaling off) with both variants loaded.`,
    'A separate client process offers single-image queries, open loop (Poisson arrivals, sent on a 1 ms timer tick whatever',
    'the answers do), to three systems in turn with the same arrival pattern: the max-batch-32 variant through the worker,',
    'the max-batch-1 variant through the worker (client -> nats-server -> worker -> session thread and back), and direct',
    'ONNX Runtime in the client process (same file and session options, one `session.run` per query, FIFO queue, no NATS).',
    `100 % load is the unbatched worker's capacity measured in this run: ${x.caps.single.toFixed(0)} q/s (closed loop, ${CALIBRATION.concurrency} queries outstanding,`,
    `${CALIBRATION.seconds} s after ${CALIBRATION.warmupS} s of warm-up); the profile alone promises ${(1000 / x.b1).toFixed(0)} q/s (1000 / batch-1 p50). Each load runs ${WARMUP_S} s of warm-up, then ${MEASURE_S} s measured.`,
    `Deadline ${DEADLINE_MS} ms per query. Latency is client-observed, send to answer; p50/p99 over the queries sent in the`,
    'measured window; "achieved" counts answers completed in it; "mean batch" is those answers / batches the instance ran in',
    'it (`batchesRun`); "send lag p99" is how late the client sent against the schedule; "worker loop" is the utilisation',
    'of the worker\'s event loop; host CPU is the busy share of both cores in the window, "other CPU" the part of it taken by',
    `processes other than this benchmark's (the machine is shared: each run first waits up to ${QUIET.maxWaitMs / 1000} s for them to drop below ${QUIET.threshold * 100} %);`,
    '"instance" is the monitor\'s verdict at the window\'s end. Caveats: client, worker, nats-server and the session threads',
    'share 2 cores, so the client\'s encoding and sending are paid for out of the system\'s CPU; sends are grouped per',
    '1 ms tick (a little burstier than Poisson); where "send lag p99" reaches ~100 ms the client is saturated too and the',
    'row no longer isolates the worker; the worker holds both variants, only one receives queries at a time.',
    ...(MODEL === 'cnn-small' ? [
      'Why cnn-small: its per-image cost falls with batch size and its compute is small next to the serving path\'s cost per',
      'run, so batching amortises both; cnn-wide is compute-bound at batch 1 (batch 32 costs 32 batch-1 runs), so on 2 cores',
      'batching can only amortise the per-run overhead (try `--model cnn-wide` to see it).',
    ] : []),
    '',
    '```',
    table,
    '```',
    '',
    `Saturation throughput, closed loop as above: batched ${x.caps.batched.toFixed(0)} q/s, unbatched ${x.caps.single.toFixed(0)} q/s, direct ${x.caps.direct.toFixed(0)} q/s`,
    `(batched / unbatched ${(x.caps.batched / x.caps.single).toFixed(2)}x, batched / direct ${(x.caps.batched / x.caps.direct).toFixed(2)}x, unbatched / direct ${(x.caps.single / x.caps.direct).toFixed(3)}x).`,
    `Runs in which other processes took more than ${QUIET.threshold * 100} % of the cores: ${rows.filter((w) => w.others > QUIET.threshold).length} of ${rows.length}.`,
    `p50 at ${(LOADS[0] * 100).toFixed(0)} % load: batched ${fmt(low('batched'))} ms, unbatched ${fmt(low('single'))} ms, direct ${fmt(low('direct'))} ms;`,
    `the system's overhead over direct ONNX Runtime is ${(low('single') - low('direct')).toFixed(2)} ms per query unbatched, ${(low('batched') - low('direct')).toFixed(2)} ms batched.`,
  ].join('\n');
  return md;
}

if (argv.includes('--generator')) await generator();
else await main();
