// Fault injection: what happens to queries when a worker, a controller or the NATS server dies, with
// real processes (`infaas controller`, `infaas worker`, nats-server) and an open-loop client that
// counts every query's outcome (no client retries: every answer and error is the system's).
// Usage: npm run bench:faults [-- --write] [--only <scenario>]   (--write: docs/reliability.md)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from 'nats';
import { startProfiler } from '../actors/profiler/index.js';
import { startRegistrar } from '../actors/registrar/index.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { closeBus, connectBus } from '../runtime/bus/nats.js';
import { followStatus } from '../runtime/bus/kv-watch.js';
import { openStores, type Stores } from '../runtime/bus/store.js';
import { RegistryClient, type ModelInfo } from '../runtime/client/registry-client.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { silentLogger } from '../runtime/log.js';
import type { Query } from '../schemas/query.js';
import { zooModelBytes, zooModels, zooRequest, zooValidationSet } from '../zoo/index.js';
import { OpenLoad, RestartableNats, fmtTally, sleep, startActor, workersHolding, type ActorProcess, type QueryOutcome, type Tally } from './fault-kit.js';
import { machineLine, writeSection } from './machine.js';

export const MODEL = 'mlp-small';
export const SLOW_MODEL = 'cnn-wide';
export const HARDWARE_CLASS = 'cpu-test';

export interface FaultBed {
  nats: RestartableNats;
  nc: NatsConnection;
  stores: Stores;
  dataDir: string;
  /** Variant ids of the model, by max batch, and the batch-1 variant of SLOW_MODEL. */
  variants: { batch1: string; batched: string; slowBatch1: string };
  /** Processes started by scenarios, stopped by `dispose`. */
  procs: ActorProcess[];
  dispose(): Promise<void>;
}

/** A nats-server, a registrar and profiler in this process, and the model registered for HARDWARE_CLASS. */
export async function startBed(): Promise<FaultBed> {
  const nats = new RestartableNats();
  await nats.start();
  const nc = await connectBus({ servers: nats.url, name: 'faults-client', log: silentLogger });
  const stores = await openStores(nc);
  const registrar = await startRegistrar({ nc, stores, log: silentLogger });
  const profiler = await startProfiler({
    nc, stores, log: silentLogger, hardwareClass: HARDWARE_CLASS, threads: 1,
    measure: { minRuns: 5, minTimeMs: 5, maxRuns: 50, warmupRuns: 2, warmupMs: 0, maxValidationSamples: 300 },
    generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [1, 8], threads: [1], providers: ['cpu'] },
  });
  const client = new RegistryClient(nc, stores);
  const register = async (name: string): Promise<ModelInfo> => {
    const m = zooModels().find((z) => z.name === name)!;
    const object = await client.upload(zooModelBytes(name));
    const validation = await client.upload(zooValidationSet(300));
    return client.register(zooRequest(m, object, validation));
  };
  const info = await register(MODEL);
  // The overload scenario needs a model whose batch-1 instance, not the client, is the bottleneck.
  const slow = await register(SLOW_MODEL);
  await profiler.stop();
  const byBatch = (i: ModelInfo, b: number) => i.variants.find((v) => v.maxBatch === b)!.id;
  const dataDir = mkdtempSync(join(tmpdir(), 'infaas-faults-data-'));
  const procs: ActorProcess[] = [];
  return {
    nats, nc, stores, dataDir, procs, variants: { batch1: byBatch(info, 1), batched: byBatch(info, 8), slowBatch1: byBatch(slow, 1) },
    dispose: async () => {
      await Promise.all(procs.map((p) => p.kill('SIGKILL')));
      await registrar.stop();
      await closeBus(nc);
      await nats.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ScenarioResult {
  name: string;
  /** Every query of the run. */
  all: Tally;
  /** Queries sent from the fault on. */
  afterFault: Tally;
  /** Queries sent from 100 ms after the fault: what the system does once it has seen the fault. */
  settled?: Tally;
  /** From the fault (or the server's return) until every later query was answered; undefined: never in the run. */
  recoveredMs?: number;
  notes: string[];
}

const image = arrayToTensor('float32', [1, 1, 28, 28], new Float32Array(784).fill(0.25));
const modelQuery = (latencyMs = 200): Query => ({ model: MODEL, inputs: { image }, slo: { latencyMs } });

async function actor(bed: FaultBed, kind: 'controller' | 'worker', id?: string): Promise<ActorProcess> {
  const p = await startActor(kind, bed.nats.url, { dataDir: bed.dataDir, ...(id ? { id } : {}), hardwareClass: HARDWARE_CLASS });
  bed.procs.push(p);
  return p;
}

async function stopAll(bed: FaultBed): Promise<void> {
  await Promise.all(bed.procs.splice(0).map((p) => p.kill('SIGTERM')));
}

/** Waits until a query is answered (the variant loaded, the views caught up). */
async function warm(nc: NatsConnection): Promise<void> {
  const qc = new QueryClient(nc);
  for (let i = 0; ; i++) {
    try { await qc.query(modelQuery(5000)); return; } catch (err) { if (i > 100) throw err; await sleep(200); }
  }
}

const RATE = 200;
const OVERLOAD_RATE = 1500;

/**
 * The shape of every fault scenario: once a query is answered, 2 s of open-loop load at RATE, then
 * the fault (`at` is when it starts), `afterMs` more of load; the bed's processes are then stopped.
 */
async function underLoad(bed: FaultBed, fault: () => Promise<void>, afterMs: number): Promise<{ load: OpenLoad; at: number }> {
  await warm(bed.nc);
  const load = new OpenLoad(bed.nc, () => modelQuery(), RATE);
  await sleep(2000);
  const at = Date.now();
  await fault();
  await sleep(afterMs);
  await load.stop();
  await stopAll(bed);
  return { load, at };
}

export const scenarios: Record<string, (bed: FaultBed) => Promise<ScenarioResult>> = {
  /** The only serving worker is SIGKILLed under 200 q/s: every query must still get an answer or an error. */
  'kill-only-worker': async (bed) => {
    await actor(bed, 'controller');
    const w = await actor(bed, 'worker', 'w1');
    const { load, at } = await underLoad(bed, async () => { await w.kill('SIGKILL'); }, 3000);
    return { name: 'SIGKILL the only worker (200 q/s)', all: load.tally(), afterFault: load.tally(at), notes: [] };
  },

  /** One of two workers, the one holding the instance, is SIGKILLed: the other loads the variant and serves. */
  'kill-one-of-two-workers': async (bed) => {
    await actor(bed, 'controller');
    await actor(bed, 'worker', 'w1');
    await actor(bed, 'worker', 'w2');
    let victim = bed.procs[1];
    const { load, at } = await underLoad(bed, async () => {
      const holders = await workersHolding(bed.stores, bed.variants.batched).then(async (h) => h.length ? h : workersHolding(bed.stores, bed.variants.batch1));
      victim = bed.procs.find((p) => p.kind === 'worker' && holders.includes(p.id)) ?? victim;
      await victim.kill('SIGKILL');
    }, 4000);
    return { name: `SIGKILL one of two workers (${victim.id}, holding the instance; 200 q/s)`, all: load.tally(), afterFault: load.tally(at), recoveredMs: load.recoveredAfter(at), notes: [] };
  },

  /** The only controller is SIGKILLed and started again. */
  'kill-only-controller': async (bed) => {
    const c = await actor(bed, 'controller');
    await actor(bed, 'worker', 'w1');
    let back = 0;
    const { load, at } = await underLoad(bed, async () => {
      await c.kill('SIGKILL');
      await actor(bed, 'controller');
      back = Date.now();
    }, 3000);
    return {
      name: 'SIGKILL the only controller, start another (200 q/s)', all: load.tally(), afterFault: load.tally(at), settled: load.tally(at + 100), recoveredMs: load.recoveredAfter(at),
      notes: [`the new controller was serving ${back - at} ms after the kill (process start-up)`, `sent from 100 ms after the kill: ${fmtTally(load.tally(at + 100))}`],
    };
  },

  /** One of two controllers is SIGKILLed. */
  'kill-one-of-two-controllers': async (bed) => {
    const c1 = await actor(bed, 'controller');
    await actor(bed, 'controller');
    await actor(bed, 'worker', 'w1');
    const { load, at } = await underLoad(bed, async () => { await c1.kill('SIGKILL'); }, 3000);
    return {
      name: 'SIGKILL one of two controllers (200 q/s)', all: load.tally(), afterFault: load.tally(at), settled: load.tally(at + 100), recoveredMs: load.recoveredAfter(at),
      notes: [`sent in the 100 ms after the kill: ${fmtTally(load.tally(at, at + 100))}`, `sent later: ${fmtTally(load.tally(at + 100))}`],
    };
  },

  /** The NATS server stops for 6 s and comes back (same port, same store). */
  'restart-nats': async (bed) => {
    await actor(bed, 'controller');
    await actor(bed, 'worker', 'w1');
    let clientBack = 0;
    let back = 0;
    const stopFollowing = followStatus(bed.nc, (type) => { if (type === 'reconnect') clientBack = Date.now(); });
    const { load, at } = await underLoad(bed, async () => {
      await bed.nats.stop();
      await sleep(6000);
      await bed.nats.start();
      back = Date.now();
    }, 6000);
    stopFollowing();
    return {
      name: 'nats-server down 6 s, then back (200 q/s)', all: load.tally(), afterFault: load.tally(clientBack), recoveredMs: load.recoveredAfter(clientBack),
      notes: [
        `while the server was down (${back - at} ms): ${fmtTally(load.tally(at, back))}`,
        `after the server was back, before this client had reconnected (${clientBack - back} ms): ${fmtTally(load.tally(back, clientBack))}`,
        'after-fault and recovery count from the moment this client had reconnected',
      ],
    };
  },

  /** Far more than one batch-1 instance can do: refusals must come fast, not at or after the deadline. */
  'overload': async (bed) => {
    await actor(bed, 'controller');
    await actor(bed, 'worker', 'w1');
    await warm(bed.nc);
    const q: Query = { variant: bed.variants.slowBatch1, inputs: { image }, slo: { latencyMs: 200 } };
    await new QueryClient(bed.nc).query({ ...q, slo: { latencyMs: 5000 } });
    const load = new OpenLoad(bed.nc, () => q, OVERLOAD_RATE);
    await sleep(5000);
    await load.stop();
    await stopAll(bed);
    const times = (keep: (o: QueryOutcome) => boolean) => load.outcomes.filter(keep).map((o) => o.doneAt - o.sentAt).sort((a, b) => a - b);
    const pcts = (xs: number[]) => `p50 ${xs[Math.floor(0.5 * xs.length)] ?? 0} ms, p99 ${xs[Math.min(xs.length - 1, Math.floor(0.99 * xs.length))] ?? 0} ms, max ${xs.at(-1) ?? 0} ms`;
    return {
      name: `overload: ${OVERLOAD_RATE} q/s at one batch-1 ${SLOW_MODEL} instance (more than it can serve on this machine), 200 ms objective`, all: load.tally(), afterFault: load.tally(), notes: [
        `after sending, answers took ${pcts(times((o) => o.ok))}`,
        `NO_CAPACITY took ${pcts(times((o) => o.code === 'NO_CAPACITY'))}`,
        `DEADLINE_EXCEEDED took ${pcts(times((o) => o.code === 'DEADLINE_EXCEEDED'))}`,
      ],
    };
  },
};

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : Object.keys(scenarios);
  const machine = machineLine();
  const lines: string[] = [];
  const out = (s: string): void => { process.stdout.write(s + '\n'); lines.push(s); };
  out(`Method: an open-loop client at a fixed rate (no client retries), ${MODEL} queries with a 200 ms objective; the`);
  out('client gives up 2 s past the objective and counts that query lost. Controllers and workers are `infaas` processes;');
  out('the fault is a SIGKILL (or stopping nats-server) 2 s into the load.');
  out(machine);
  for (const name of only) {
    const bed = await startBed();
    try {
      const r = await scenarios[name](bed);
      out('');
      out(`${name}: ${r.name}`);
      out(`  all:         ${fmtTally(r.all)}`);
      out(`  after fault: ${fmtTally(r.afterFault)}`);
      out(`  recovered:   ${r.recoveredMs === undefined ? 'not within the run' : `${r.recoveredMs} ms after the fault`}`);
      for (const n of r.notes) out(`  ${n}`);
    } finally {
      await bed.dispose();
    }
  }
  if (argv.includes('--write')) writeSection('docs/reliability.md', 'faults', `\`\`\`\n${lines.join('\n')}\n\`\`\``);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
