// `infaas bench`: load against a live system through the public QueryClient, open loop (seeded
// Poisson arrivals, at a rate or over a rate-over-time trace) or closed loop (n outstanding), one
// query class or a mix, with labelled zoo digits so every answer is checked; the workers bucket is
// sampled meanwhile for the provisioned cost.
import type { NatsConnection } from 'nats';
import { QueryClient } from '../../runtime/client/query-client.js';
import { arrayToTensor, tensorToArray } from '../../runtime/bus/codec.js';
import { entryValue, kvGet, kvKeys, type Stores } from '../../runtime/bus/store.js';
import { keys } from '../../subjects/index.js';
import { InfaasError } from '../../schemas/errors.js';
import type { ProfileRecord } from '../../schemas/registry.js';
import { WorkerRecord } from '../../schemas/worker.js';
import { isValid } from '../../schemas/validate.js';
import type { Query, QueryResult } from '../../schemas/query.js';
import { loadSplit, PIXELS, type DigitSet } from '../../zoo/data.js';
import { classPicker, cutTrace, expectedArrivals, traceArrivals, type QueryClass, type RateTrace } from '../trace.js';
import type { FleetSample, FleetWorker } from './fleet.js';
import { benchDefaults } from './defaults.js';
import { poissonArrivals, summarise, windowSpans, windowStats, type BenchOutcome, type RunContext, type WindowStats } from './stats.js';

/** Open loop at a constant rate, open loop over a rate-over-time trace (time 0 = the start of the warmup), or closed loop. */
export type BenchLoad = { kind: 'open'; rate: number } | { kind: 'trace'; trace: RateTrace } | { kind: 'closed'; concurrency: number };
export type BenchTarget = { task: string } | { model: string } | { variant: string };

/**
 * What the queries ask: one class (a target, a latency objective in ms, sent as the SLO and used for
 * goodput, and an accuracy floor), or a mix (each query's class drawn by weight, with its own).
 */
export type BenchQueries =
  | { target: BenchTarget; latencyMs: number; minAccuracy?: number; mix?: undefined }
  | { mix: QueryClass[]; target?: undefined; latencyMs?: undefined; minAccuracy?: undefined };

export type BenchOptions = BenchRunOptions & BenchQueries;

export interface BenchRunOptions {
  load: BenchLoad;
  durationS: number;
  /** Seconds before the measurement, excluded from the overall statistics (default 2). */
  warmupS: number;
  windowS: number;
  /** Seeds the arrival process (open loop). */
  seed: number;
  /** QueryClient retries of retryable errors within the deadline (default true, as a user's client). */
  retry: boolean;
}

export { benchDefaults };

export interface BenchDeps {
  nc: NatsConnection;
  /** A variant's measured accuracy on a hardware class (undefined: unknown). Default: none known. */
  accuracyOf?: (variant: string, hardwareClass: string) => Promise<number | undefined>;
  /** Called as each window closes, with what has come back so far and how many queries are in flight. */
  onWindow?: (w: WindowStats, inFlight: number) => void;
  /** Labelled inputs (default: the zoo's validation split). */
  digits?: DigitSet;
  /**
   * The workers up now (a throw: unreadable, reported as null). Sampled every window (at most every
   * second) while the run lasts, for the provisioned cost. Default: not sampled (null).
   */
  fleet?: () => Promise<FleetWorker[]>;
}

export interface BenchReport {
  options: BenchOptions;
  startedAt: string;
  /** Queries sent, and every one's outcome (sorted by seq). */
  sent: number;
  outcomes: BenchOutcome[];
  windows: WindowStats[];
  overall: WindowStats;
  /** Overall statistics of each class of a mix, by name. */
  classes?: Record<string, WindowStats>;
  /** The fleet samples (empty when not sampled). */
  fleet: FleetSample[];
}

/** A worker's record counts as up while rewritten within this long (as the dispatcher's ClusterView). */
export const FLEET_STALE_MS = 5000;

/**
 * The workers up now, from the workers bucket: records that match the schema (ready or draining:
 * a draining worker still holds its machine) and were rewritten within `staleMs` by this process's
 * clock (a record first seen counts from its own heartbeat). Throws when the bucket cannot be read.
 */
export function kvFleet(stores: Stores, staleMs = FLEET_STALE_MS): () => Promise<FleetWorker[]> {
  const heard = new Map<string, { revision: number; at: number }>();
  return async () => {
    const now = Date.now();
    const entries = await Promise.all((await kvKeys(stores.workers)).map((k) => stores.workers.get(k)));
    const out: FleetWorker[] = [];
    for (const e of entries) {
      if (!e) continue;
      let w: unknown;
      try { w = entryValue(e); } catch { continue; } // not JSON: not a worker's record
      if (!isValid(WorkerRecord, w)) continue;
      const prev = heard.get(e.key);
      const at = prev === undefined ? w.heartbeatAt : prev.revision === e.revision ? prev.at : now;
      heard.set(e.key, { revision: e.revision, at });
      if (now - at <= staleMs) out.push({ id: w.id, hardwareClass: w.hardwareClass, pricePerHour: w.pricePerHour });
    }
    return out;
  };
}

/** Measured accuracy from the KV profiles (keys.profile), looked up once per variant and class. */
export function profileAccuracy(stores: Stores): (variant: string, hardwareClass: string) => Promise<number | undefined> {
  const cache = new Map<string, Promise<number | undefined>>();
  return (variant, hardwareClass) => {
    const key = `${variant}|${hardwareClass}`;
    let p = cache.get(key);
    if (!p) {
      // A client without read access to KV, or an odd name, leaves the promise unknown ("n/a").
      p = Promise.resolve().then(() => kvGet<ProfileRecord>(stores.profiles, keys.profile(variant, hardwareClass)))
        .then((e) => e?.value.accuracy, () => undefined);
      cache.set(key, p);
    }
    return p;
  };
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Checks what the types cannot say (throws with the reason); a trace is cut to the run. */
export function checkBenchOptions(o: BenchOptions): BenchOptions {
  const need = (ok: boolean, message: string) => { if (!ok) throw new Error(message); };
  need(o.durationS > 0 && o.warmupS >= 0 && o.windowS > 0, 'bench: duration and window > 0, warmup >= 0');
  const runS = o.warmupS + o.durationS;
  if (o.load.kind === 'trace') {
    need(o.load.trace.durationS >= runS - 1e-9, `bench: the trace lasts ${o.load.trace.durationS} s, shorter than warmup + duration (${runS} s)`);
    o = { ...o, load: { kind: 'trace', trace: cutTrace(o.load.trace, Math.min(runS, o.load.trace.durationS)) } };
  }
  if (o.mix) {
    need(o.mix.length > 0, 'bench: an empty query mix');
    const names = o.mix.map((c) => c.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    need(twice === undefined, `bench: two classes of the mix are named "${twice}" (give each a distinct name)`);
  }
  return o;
}

interface SentClass { target: BenchTarget; slo: Query['slo']; own: Pick<BenchOutcome, 'cls' | 'objectiveMs'> }

/** Each query's class in send order: the one class, or the mix's draws (the n-th is assignClasses(…)[n]). */
function queryClasses(o: BenchOptions): () => SentClass {
  const slo = (latencyMs: number, minAccuracy?: number) => ({ latencyMs, ...(minAccuracy !== undefined ? { minAccuracy } : {}) });
  if (o.mix === undefined) {
    const one: SentClass = { target: o.target, slo: slo(o.latencyMs, o.minAccuracy), own: {} };
    return () => one;
  }
  const all = o.mix.map((c): SentClass => ({ target: c.target, slo: slo(c.latencyMs, c.minAccuracy), own: { cls: c.name, objectiveMs: c.latencyMs } }));
  const pick = classPicker(o.mix, o.seed);
  return () => all[pick()];
}

/** Expected arrivals in [fromS, toS) of an open loop; undefined for a closed loop. */
function expectation(load: BenchLoad): RunContext['expectedArrivals'] {
  if (load.kind === 'open') return (from, to) => load.rate * (to - from);
  if (load.kind === 'trace') return (from, to) => expectedArrivals(load.trace, from, to);
  return undefined;
}

export async function runBench(deps: BenchDeps, options: BenchOptions): Promise<BenchReport> {
  options = checkBenchOptions(options);
  const digits = deps.digits ?? loadSplit('validation');
  if (digits.count === 0) throw new Error('no labelled inputs');
  const qc = new QueryClient(deps.nc);
  const { mix } = options;
  const nextClass = queryClasses(options);
  // Every outcome of a mix carries its class's objective; the run's is the fallback of the one class.
  const objectiveMs = options.latencyMs ?? Infinity;
  const outcomes: BenchOutcome[] = [];
  const pending = new Set<Promise<void>>();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const endMs = (options.warmupS + options.durationS) * 1000;
  let seq = 0;

  // One query: digit seq mod count, batch 1, its class's target and objective (the seq-th draw of
  // the mix); its outcome is recorded exactly once, answer or error.
  const send = (): Promise<void> => {
    const n = seq++;
    const i = n % digits.count;
    const { target, slo, own } = nextClass();
    const q: Query = {
      id: `bench-${n}`, ...target, slo,
      inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], digits.images.subarray(i * PIXELS, (i + 1) * PIXELS)) },
    };
    const sentAt = now();
    const p = qc.query(q, { retry: options.retry }).then(
      async (a: QueryResult) => {
        const doneAt = now();
        const out = Object.values(a.outputs)[0];
        const promised = deps.accuracyOf ? await deps.accuracyOf(a.variant, a.hardwareClass).catch(() => undefined) : undefined;
        outcomes.push({
          seq: n, sentAt, doneAt, ok: true, variant: a.variant, hardwareClass: a.hardwareClass, cost: a.cost,
          correct: out !== undefined && argmax(tensorToArray(out) as ArrayLike<number>) === digits.labels[i],
          ...(promised !== undefined ? { promisedAccuracy: promised } : {}), ...own,
        });
      },
      (err: unknown) => {
        const code = err instanceof InfaasError ? err.code : (err as { code?: string }).code ?? 'CLIENT_ERROR';
        outcomes.push({ seq: n, sentAt, doneAt: now(), ok: false, code, ...own });
      },
    ).finally(() => pending.delete(p));
    pending.add(p);
    return p;
  };

  const expected = expectation(options.load);
  const fleet = deps.fleet ? sampleFleet(deps.fleet, Math.min(options.windowS, 1) * 1000, endMs, now) : undefined;
  const context = (untilMs: number): RunContext => ({
    ...(expected ? { expectedArrivals: expected } : {}), ...(fleet ? { fleet: { samples: fleet.samples, untilMs } } : {}),
  });
  const progress = reportWindows(deps, options, objectiveMs, outcomes, pending, now, () => context(Math.min(now(), endMs)));
  try {
    const { load } = options;
    if (load.kind === 'open') await openLoop(poissonArrivals(load.rate, endMs / 1000, options.seed), endMs, now, send);
    else if (load.kind === 'trace') await openLoop(traceArrivals(load.trace, options.seed), endMs, now, send);
    else await closedLoop(load.concurrency, endMs, now, send);
    await Promise.all([...pending, fleet?.done]);
  } finally {
    progress.stop();
    fleet?.stop();
  }
  outcomes.sort((a, b) => a.seq - b.seq);
  const total = mix?.reduce((a, c) => a + c.weight, 0) ?? 1;
  const { windows, overall, classes } = summarise(outcomes, {
    ...options, objectiveMs, ...(mix ? { classes: mix.map((c) => ({ name: c.name, share: c.weight / total })) } : {}),
  }, context(endMs));
  return { options, startedAt, sent: seq, outcomes, windows, overall, ...(classes ? { classes } : {}), fleet: fleet?.samples ?? [] };
}

/** Sends at the precomputed arrival times (ms); a late timer sends everything that is due. */
async function openLoop(arrivals: readonly number[], endMs: number, now: () => number, send: () => Promise<void>): Promise<void> {
  let next = 0;
  while (next < arrivals.length && arrivals[next] < endMs) {
    const wait = arrivals[next] - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (const t = now(); next < arrivals.length && arrivals[next] <= t && arrivals[next] < endMs; next++) void send();
  }
  // Idle until the end of the run, so the last window is as long as the others.
  const rest = endMs - now();
  if (rest > 0) await new Promise((r) => setTimeout(r, rest));
}

/** `concurrency` loops, each sending its next query once the previous one has its outcome. */
async function closedLoop(concurrency: number, endMs: number, now: () => number, send: () => Promise<void>): Promise<void> {
  const loop = async () => { while (now() < endMs) await send(); };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

/**
 * Reads the fleet at 0 and every `everyMs` until the end of the run, one read at a time (a read
 * slower than `everyMs` skips the ticks it overran; each sample is stamped when its read started,
 * and holds until the next). A failed read is a null sample.
 */
function sampleFleet(read: () => Promise<FleetWorker[]>, everyMs: number, endMs: number, now: () => number): { samples: FleetSample[]; done: Promise<void>; stop(): void } {
  const samples: FleetSample[] = [];
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wake: (() => void) | undefined;
  const done = (async () => {
    for (let k = 0; !stopped && k * everyMs < endMs; k = Math.max(k + 1, Math.ceil(now() / everyMs))) {
      const wait = k * everyMs - now();
      if (wait > 0) await new Promise<void>((r) => { wake = r; timer = setTimeout(r, wait); });
      if (stopped) return;
      const atMs = now();
      if (atMs >= endMs) return;
      const workers = await read().catch(() => null);
      samples.push({ atMs, workers });
    }
  })();
  return { samples, done, stop: () => { stopped = true; clearTimeout(timer); wake?.(); } };
}

/** Calls onWindow as each window closes (a timer at each boundary). */
function reportWindows(deps: BenchDeps, options: BenchOptions, objectiveMs: number, outcomes: BenchOutcome[], pending: Set<unknown>, now: () => number, context: () => RunContext): { stop(): void } {
  if (!deps.onWindow) return { stop: () => {} };
  const spans = windowSpans(options.warmupS, options.durationS, options.windowS);
  // Each window is reported exactly once: by its timer, or at stop() when the run ended first (the
  // last query can come back in the same turn of the event loop as the last window's end, and a
  // cleared timer used to drop that window's line: a flake seen in test/bench-live.test.ts).
  const reported = new Set<number>();
  const report = (i: number) => {
    if (reported.has(i)) return;
    reported.add(i);
    deps.onWindow!(windowStats(outcomes, spans[i], objectiveMs, context()), pending.size);
  };
  const timers = spans.map((s, i) => setTimeout(() => report(i), Math.max(0, s.toS * 1000 - now())));
  return {
    stop: () => {
      timers.forEach(clearTimeout);
      spans.forEach((_, i) => report(i));
    },
  };
}
