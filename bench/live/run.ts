// `infaas bench`: load against a live system through the public QueryClient, open loop (seeded
// Poisson arrivals) or closed loop (n outstanding), with labelled zoo digits so every answer is checked.
import type { NatsConnection } from 'nats';
import { QueryClient } from '../../runtime/client/query-client.js';
import { arrayToTensor, tensorToArray } from '../../runtime/bus/codec.js';
import { kvGet, type Stores } from '../../runtime/bus/store.js';
import { keys } from '../../subjects/index.js';
import { InfaasError } from '../../schemas/errors.js';
import type { ProfileRecord } from '../../schemas/registry.js';
import type { Query, QueryResult } from '../../schemas/query.js';
import { loadSplit, PIXELS, type DigitSet } from '../../zoo/data.js';
import { poissonArrivals, summarise, windowSpans, windowStats, type BenchOutcome, type WindowStats } from './stats.js';

export type BenchLoad = { kind: 'open'; rate: number } | { kind: 'closed'; concurrency: number };
export type BenchTarget = { task: string } | { model: string } | { variant: string };

export interface BenchOptions {
  load: BenchLoad;
  target: BenchTarget;
  /** Latency objective (ms), sent as the SLO and used for goodput. */
  latencyMs: number;
  minAccuracy?: number;
  durationS: number;
  /** Seconds before the measurement, excluded from the overall statistics (default 2). */
  warmupS: number;
  windowS: number;
  /** Seeds the arrival process (open loop). */
  seed: number;
  /** QueryClient retries of retryable errors within the deadline (default true, as a user's client). */
  retry: boolean;
}

export const benchDefaults = { durationS: 10, warmupS: 2, windowS: 1, latencyMs: 100, seed: 1, retry: true } as const;

export interface BenchDeps {
  nc: NatsConnection;
  /** A variant's measured accuracy on a hardware class (undefined: unknown). Default: none known. */
  accuracyOf?: (variant: string, hardwareClass: string) => Promise<number | undefined>;
  /** Called as each window closes, with what has come back so far and how many queries are in flight. */
  onWindow?: (w: WindowStats, inFlight: number) => void;
  /** Labelled inputs (default: the zoo's validation split). */
  digits?: DigitSet;
}

export interface BenchReport {
  options: BenchOptions;
  startedAt: string;
  /** Queries sent, and every one's outcome (sorted by seq). */
  sent: number;
  outcomes: BenchOutcome[];
  windows: WindowStats[];
  overall: WindowStats;
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

export async function runBench(deps: BenchDeps, options: BenchOptions): Promise<BenchReport> {
  const digits = deps.digits ?? loadSplit('validation');
  if (digits.count === 0) throw new Error('no labelled inputs');
  const qc = new QueryClient(deps.nc);
  const slo = { latencyMs: options.latencyMs, ...(options.minAccuracy !== undefined ? { minAccuracy: options.minAccuracy } : {}) };
  const outcomes: BenchOutcome[] = [];
  const pending = new Set<Promise<void>>();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const endMs = (options.warmupS + options.durationS) * 1000;
  let seq = 0;

  // One query: digit seq mod count, batch 1; its outcome is recorded exactly once, answer or error.
  const send = (): Promise<void> => {
    const n = seq++;
    const i = n % digits.count;
    const q: Query = { id: `bench-${n}`, ...options.target, slo, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], digits.images.subarray(i * PIXELS, (i + 1) * PIXELS)) } };
    const sentAt = now();
    const p = qc.query(q, { retry: options.retry }).then(
      async (a: QueryResult) => {
        const doneAt = now();
        const out = Object.values(a.outputs)[0];
        const promised = deps.accuracyOf ? await deps.accuracyOf(a.variant, a.hardwareClass).catch(() => undefined) : undefined;
        outcomes.push({
          seq: n, sentAt, doneAt, ok: true, variant: a.variant, hardwareClass: a.hardwareClass, cost: a.cost,
          correct: out !== undefined && argmax(tensorToArray(out) as ArrayLike<number>) === digits.labels[i],
          ...(promised !== undefined ? { promisedAccuracy: promised } : {}),
        });
      },
      (err: unknown) => {
        const code = err instanceof InfaasError ? err.code : (err as { code?: string }).code ?? 'CLIENT_ERROR';
        outcomes.push({ seq: n, sentAt, doneAt: now(), ok: false, code });
      },
    ).finally(() => pending.delete(p));
    pending.add(p);
    return p;
  };

  const progress = reportWindows(deps, options, outcomes, pending, now);
  try {
    if (options.load.kind === 'open') await openLoop(options.load.rate, options.seed, endMs, now, send);
    else await closedLoop(options.load.concurrency, endMs, now, send);
    await Promise.all([...pending]);
  } finally {
    progress.stop();
  }
  outcomes.sort((a, b) => a.seq - b.seq);
  const { windows, overall } = summarise(outcomes, { ...options, objectiveMs: options.latencyMs });
  return { options, startedAt, sent: seq, outcomes, windows, overall };
}

/** Sends at the precomputed Poisson arrival times; a late timer sends everything that is due. */
async function openLoop(rate: number, seed: number, endMs: number, now: () => number, send: () => Promise<void>): Promise<void> {
  const arrivals = poissonArrivals(rate, endMs / 1000, seed);
  let next = 0;
  while (next < arrivals.length) {
    const wait = arrivals[next] - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (const t = now(); next < arrivals.length && arrivals[next] <= t; next++) void send();
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

/** Calls onWindow as each window closes (a timer at each boundary). */
function reportWindows(deps: BenchDeps, options: BenchOptions, outcomes: BenchOutcome[], pending: Set<unknown>, now: () => number): { stop(): void } {
  if (!deps.onWindow) return { stop: () => {} };
  const spans = windowSpans(options.warmupS, options.durationS, options.windowS);
  const timers = spans.map((s) => setTimeout(() => deps.onWindow!(windowStats(outcomes, s, options.latencyMs), pending.size), Math.max(0, s.toS * 1000 - now())));
  return { stop: () => timers.forEach(clearTimeout) };
}
