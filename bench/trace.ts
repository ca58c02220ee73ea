// Load shapes and traces: offered rate over time (piecewise linear), the paper's shapes scaled to a
// machine, a seeded diurnal-with-bursts generator standing in for the paper's Twitter trace, trace
// files, non-homogeneous Poisson arrivals over a trace, and query mixes. Pure: no I/O, no clock. The
// live `infaas bench` and the trace simulator read the same traces and draw the same arrivals.
import { seededRandom } from '../runtime/random.js';

/** Offered rate (queries/s) at time t (s from the start); linear between points, held after the last. */
export interface RatePoint { t: number; rate: number }

export interface RateTrace {
  name: string;
  /** How the trace was made, for reports. */
  description: string;
  durationS: number;
  points: RatePoint[];
}

/** The rate at `tS` seconds: linear interpolation between points, the end values outside them. */
export function rateAt(trace: RateTrace, tS: number): number {
  const ps = trace.points;
  if (ps.length === 0) return 0;
  if (tS <= ps[0].t) return ps[0].rate;
  // Binary search for the segment holding tS.
  let lo = 0;
  let hi = ps.length - 1;
  if (tS >= ps[hi].t) return ps[hi].rate;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (ps[mid].t <= tS) lo = mid; else hi = mid;
  }
  const [a, b] = [ps[lo], ps[hi]];
  return b.t === a.t ? b.rate : a.rate + ((b.rate - a.rate) * (tS - a.t)) / (b.t - a.t);
}

/** Mean rate over the trace (exact for piecewise linear). */
export function meanRate(trace: RateTrace): number {
  return expectedArrivals(trace, 0, trace.durationS) / Math.max(1e-9, trace.durationS);
}

/** Expected arrivals in [fromS, toS): the integral of the rate (trapezoids over the breakpoints). */
export function expectedArrivals(trace: RateTrace, fromS: number, toS: number): number {
  const cuts = [fromS, ...trace.points.map((p) => p.t).filter((t) => t > fromS && t < toS), toS];
  let sum = 0;
  for (let i = 1; i < cuts.length; i++) sum += ((rateAt(trace, cuts[i - 1]) + rateAt(trace, cuts[i])) / 2) * (cuts[i] - cuts[i - 1]);
  return sum;
}

/** Constant rate (the paper's "flat low": 4 q/s). */
export function flatTrace(rate: number, durationS: number): RateTrace {
  check(rate >= 0 && durationS > 0, 'flat: rate >= 0 and duration > 0');
  return { name: 'flat', description: `flat at ${rate} q/s for ${durationS} s`, durationS, points: [{ t: 0, rate }, { t: durationS, rate }] };
}

/** A linear ramp (the paper's "steady high": 650 rising to 700 q/s). */
export function rampTrace(from: number, to: number, durationS: number): RateTrace {
  check(from >= 0 && to >= 0 && durationS > 0, 'ramp: rates >= 0 and duration > 0');
  return { name: 'steady', description: `steady, ${from} rising to ${to} q/s over ${durationS} s`, durationS, points: [{ t: 0, rate: from }, { t: durationS, rate: to }] };
}

export interface FluctuatingOptions {
  low: number;
  high: number;
  /** Seconds of one low-high-low cycle. */
  periodS: number;
  durationS: number;
  /** Seconds each rise and fall takes (default a tenth of the period). */
  rampS?: number;
}

/**
 * The paper's "fluctuating" load (4 to 80 q/s): plateaus at low and high, half a period each,
 * joined by linear ramps, starting low.
 */
export function fluctuatingTrace(o: FluctuatingOptions): RateTrace {
  check(o.low >= 0 && o.high >= o.low && o.periodS > 0 && o.durationS > 0, 'fluctuating: 0 <= low <= high, period and duration > 0');
  const ramp = Math.min(o.periodS / 2, o.rampS ?? o.periodS / 10);
  const half = o.periodS / 2;
  const points: RatePoint[] = [];
  for (let c = 0; c * o.periodS < o.durationS; c++) {
    const t0 = c * o.periodS;
    points.push({ t: t0, rate: o.low }, { t: t0 + half - ramp, rate: o.low }, { t: t0 + half, rate: o.high }, { t: t0 + o.periodS - ramp, rate: o.high });
  }
  points.push({ t: Math.ceil(o.durationS / o.periodS) * o.periodS, rate: o.low });
  return {
    name: 'fluctuating',
    description: `fluctuating between ${o.low} and ${o.high} q/s, period ${round3(o.periodS)} s (ramps ${round3(ramp)} s), ${o.durationS} s`,
    durationS: o.durationS, points: clip(points, o.durationS),
  };
}

export interface DiurnalOptions {
  /** Rate at the night-time trough and the daytime peak (q/s). */
  trough: number;
  peak: number;
  /** Seconds of one "day" (86,400 for a real day; scaled down for short runs). */
  dayS: number;
  durationS: number;
  /** Mean seconds between bursts (Poisson); 0 for none. */
  burstEveryS: number;
  /** A burst multiplies the rate by this factor... */
  burstFactor: number;
  /** ...for this many seconds (half of it rising, half falling). */
  burstS: number;
  /** Relative noise, held for each step: rate x (1 + noise x u), u uniform in [-1, 1]. */
  noise: number;
  /** Seconds between trace points (noise changes at this step). */
  stepS: number;
  seed: number;
}

/**
 * Defaults, documented in docs/bench.md: a day of 600 s (so a ten-minute run sees a whole day),
 * trough 4 q/s and peak 80 q/s (the paper's fluctuating range), a burst every 120 s on average
 * multiplying the rate by 2.5 for 10 s, +-10 % noise at 1 s steps. The trough is at t = 0.
 */
export const diurnalDefaults: DiurnalOptions = Object.freeze({
  trough: 4, peak: 80, dayS: 600, durationS: 600, burstEveryS: 120, burstFactor: 2.5, burstS: 10, noise: 0.1, stepS: 1, seed: 1,
});

/**
 * Diurnal with bursts, standing in for the paper's Twitter trace: a raised cosine from trough to
 * peak and back over each day, times seeded bursts (triangular: up to burstFactor at their middle)
 * and step-held noise. Same options and seed, same trace.
 */
export function diurnalTrace(options: Partial<DiurnalOptions> = {}): RateTrace {
  const o = { ...diurnalDefaults, ...options };
  check(o.trough >= 0 && o.peak >= o.trough && o.dayS > 0 && o.durationS > 0 && o.stepS > 0, 'diurnal: 0 <= trough <= peak, day, duration and step > 0');
  check(o.burstEveryS >= 0 && o.burstFactor >= 1 && o.burstS >= 0 && o.noise >= 0 && o.noise < 1, 'diurnal: burstEvery >= 0, burstFactor >= 1, burst >= 0, 0 <= noise < 1');
  const random = seededRandom(o.seed);
  const bursts: number[] = [];
  if (o.burstEveryS > 0) {
    for (let t = -Math.log(1 - random()) * o.burstEveryS; t < o.durationS; t += -Math.log(1 - random()) * o.burstEveryS) bursts.push(t);
  }
  const burstAt = (t: number) => {
    let f = 1;
    for (const b of bursts) {
      const d = Math.abs(t - (b + o.burstS / 2));
      if (o.burstS > 0 && d < o.burstS / 2) f = Math.max(f, 1 + (o.burstFactor - 1) * (1 - d / (o.burstS / 2)));
    }
    return f;
  };
  const points: RatePoint[] = [];
  for (let t = 0; t <= o.durationS + 1e-9; t += o.stepS) {
    const day = o.trough + ((o.peak - o.trough) * (1 - Math.cos((2 * Math.PI * t) / o.dayS))) / 2;
    const noise = 1 + o.noise * (2 * random() - 1);
    points.push({ t: round(t), rate: round(Math.max(0, day * burstAt(t) * noise)) });
  }
  return {
    name: 'diurnal',
    description: `diurnal with bursts: trough ${o.trough}, peak ${o.peak} q/s, day ${o.dayS} s, ${bursts.length} bursts (x${o.burstFactor}, ${o.burstS} s, every ~${o.burstEveryS} s), noise ±${o.noise * 100}% per ${o.stepS} s, seed ${o.seed}, ${o.durationS} s`,
    durationS: o.durationS, points: clip(points, o.durationS),
  };
}

/**
 * A trace from text: one `seconds,rate` pair per line (CSV; a header line, blank lines and lines
 * starting with # are skipped), or JSON `{points: [{t, rate}]}` / `[{t, rate}]`. Times must rise.
 * The duration is the last time unless given.
 */
export function parseTrace(text: string, name = 'file', durationS?: number): RateTrace {
  let points: RatePoint[];
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const json = JSON.parse(trimmed) as { points?: unknown } | unknown[];
    const list = Array.isArray(json) ? json : (json as { points?: unknown }).points;
    if (!Array.isArray(list)) throw new Error('trace JSON: expected [{t, rate}] or {points: [{t, rate}]}');
    points = list.map((p, i) => {
      const { t, rate } = (p ?? {}) as { t?: unknown; rate?: unknown };
      if (typeof t !== 'number' || typeof rate !== 'number') throw new Error(`trace JSON: point ${i} needs numbers t and rate`);
      return { t, rate };
    });
  } else {
    points = [];
    trimmed.split(/\r?\n/).forEach((line, i) => {
      const l = line.trim();
      if (l === '' || l.startsWith('#')) return;
      const [a, b, ...rest] = l.split(/[,;\t ]+/);
      const [t, rate] = [Number(a), Number(b)];
      if (rest.length > 0 || !Number.isFinite(t) || !Number.isFinite(rate)) {
        if (points.length === 0 && i === 0 && (Number.isNaN(t) || Number.isNaN(rate))) return; // a header
        throw new Error(`trace line ${i + 1}: expected "seconds,rate", got "${l.slice(0, 60)}"`);
      }
      points.push({ t, rate });
    });
  }
  if (points.length === 0) throw new Error('trace: no points');
  points.forEach((p, i) => {
    if (p.t < 0 || p.rate < 0) throw new Error(`trace point ${i + 1}: time and rate must be >= 0`);
    if (i > 0 && p.t <= points[i - 1].t) throw new Error(`trace point ${i + 1}: times must rise (${points[i - 1].t} then ${p.t})`);
  });
  const end = durationS ?? points[points.length - 1].t;
  if (!(end > 0)) throw new Error('trace: duration must be > 0 (give a duration for a one-point trace)');
  return { name, description: `${name}: ${points.length} points over ${end} s`, durationS: end, points: clip(points, end) };
}

/** The trace as CSV text (parseTrace reads it back). */
export function traceCsv(trace: RateTrace): string {
  return `seconds,rate\n${trace.points.map((p) => `${p.t},${p.rate}`).join('\n')}\n`;
}

/** The first `durationS` seconds of a trace (at most its duration). */
export function cutTrace(trace: RateTrace, durationS: number): RateTrace {
  check(durationS > 0 && durationS <= trace.durationS + 1e-9, `cut: duration in (0, ${trace.durationS}] s`);
  if (durationS >= trace.durationS) return trace;
  return { ...trace, description: `${trace.description}, first ${durationS} s`, durationS, points: clip(trace.points, durationS) };
}

/** Rates times `rate`, times stretched by `time` (a 24 h trace in 10 minutes: time = 600 / 86,400). */
export function scaleTrace(trace: RateTrace, o: { rate?: number; time?: number }): RateTrace {
  const [r, k] = [o.rate ?? 1, o.time ?? 1];
  check(r >= 0 && k > 0, 'scale: rate >= 0 and time > 0');
  if (r === 1 && k === 1) return trace;
  return {
    ...trace,
    description: `${trace.description}${r !== 1 ? `, rates x${r}` : ''}${k !== 1 ? `, time x${k}` : ''}`,
    durationS: trace.durationS * k, points: trace.points.map((p) => ({ t: round(p.t * k), rate: round(p.rate * r) })),
  };
}

/**
 * Send times (ms from 0) of a non-homogeneous Poisson process following the trace: by thinning
 * (candidates at the trace's peak rate, each kept with probability rate(t) / peak). Seeded: same
 * trace and seed, same arrivals. A flat trace gives the same process as a Poisson one at its rate.
 */
export function traceArrivals(trace: RateTrace, seed: number): number[] {
  const peak = Math.max(0, ...trace.points.map((p) => p.rate));
  if (!(peak > 0) || !(trace.durationS > 0)) return [];
  const random = seededRandom(seed);
  const out: number[] = [];
  for (let t = 0; ; ) {
    t += -Math.log(1 - random()) / peak;
    if (t >= trace.durationS) return out;
    if (random() * peak < rateAt(trace, t)) out.push(t * 1000);
  }
}

/** One kind of query in a mix: a target, an objective, a floor, and its share of the arrivals. */
export interface QueryClass {
  name: string;
  weight: number;
  target: { task: string } | { model: string } | { variant: string };
  latencyMs: number;
  minAccuracy?: number;
}

/**
 * A mix from JSON: `[{name?, weight?, task | model | variant, latencyMs, minAccuracy?}]`. Weights
 * default to 1 and are relative. Exactly one of task, model, variant per class.
 */
export function parseMix(text: string): QueryClass[] {
  let list: unknown;
  try { list = JSON.parse(text); } catch (e) { throw new Error(`query mix: not JSON (${(e as Error).message})`); }
  if (!Array.isArray(list) || list.length === 0) throw new Error('query mix: expected a non-empty JSON array of classes');
  return list.map((c, i) => {
    const o = (c ?? {}) as Record<string, unknown>;
    const where = `query mix class ${i + 1}`;
    const named = (['task', 'model', 'variant'] as const).filter((k) => o[k] !== undefined);
    if (named.length !== 1 || typeof o[named[0]] !== 'string') throw new Error(`${where}: exactly one of task, model, variant (a string)`);
    const latencyMs = o.latencyMs;
    if (typeof latencyMs !== 'number' || !(latencyMs > 0)) throw new Error(`${where}: latencyMs must be a number > 0`);
    const weight = o.weight ?? 1;
    if (typeof weight !== 'number' || !(weight > 0)) throw new Error(`${where}: weight must be a number > 0`);
    if (o.minAccuracy !== undefined && (typeof o.minAccuracy !== 'number' || o.minAccuracy < 0 || o.minAccuracy > 1)) throw new Error(`${where}: minAccuracy must be in [0, 1]`);
    const key = named[0];
    const target = { [key]: o[key] as string } as QueryClass['target'];
    return {
      name: typeof o.name === 'string' ? o.name : `${o[key] as string}@${latencyMs}ms`,
      weight, target, latencyMs, ...(o.minAccuracy !== undefined ? { minAccuracy: o.minAccuracy as number } : {}),
    };
  });
}

/** The class of each of `n` arrivals, drawn by weight from a seeded PRNG (its own stream: seed + 1). */
export function assignClasses(n: number, mix: readonly QueryClass[], seed: number): number[] {
  const next = classPicker(mix, seed);
  return Array.from({ length: n }, next);
}

/**
 * The same draws as assignClasses, one at a time: the i-th call returns assignClasses(n, mix, seed)[i]
 * for any n > i. For a closed loop, where the number of queries is not known in advance.
 */
export function classPicker(mix: readonly QueryClass[], seed: number): () => number {
  if (mix.length === 1) return () => 0;
  const total = mix.reduce((a, c) => a + c.weight, 0);
  const random = seededRandom(seed + 1);
  return () => {
    let x = random() * total;
    let k = 0;
    while (k < mix.length - 1 && (x -= mix[k].weight) >= 0) k++;
    return k;
  };
}

/** The paper's load shapes, scaled by `rateScale` (default 1: the paper's rates) over `durationS`. */
export function namedShape(name: string, durationS: number, rateScale = 1, seed = 1): RateTrace {
  const s = (r: number) => round(r * rateScale);
  switch (name) {
    case 'flat': return flatTrace(s(4), durationS);
    case 'steady': return rampTrace(s(650), s(700), durationS);
    case 'fluctuating': return fluctuatingTrace({ low: s(4), high: s(80), periodS: Math.max(2, durationS / 3), durationS });
    case 'diurnal': return diurnalTrace({ trough: s(4), peak: s(80), dayS: durationS, durationS, seed, burstEveryS: durationS / 5, burstS: Math.max(1, durationS / 60), stepS: Math.max(0.1, durationS / 600) });
    default: throw new Error(`unknown load shape "${name}" (one of: ${shapeNames.join(', ')})`);
  }
}

export const shapeNames = ['flat', 'steady', 'fluctuating', 'diurnal'];

function clip(points: RatePoint[], durationS: number): RatePoint[] {
  const out = points.filter((p) => p.t <= durationS);
  const last = out[out.length - 1];
  if (!last || last.t < durationS) {
    const probe: RateTrace = { name: '', description: '', durationS, points };
    out.push({ t: durationS, rate: rateAt(probe, durationS) });
  }
  return out;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;
const round3 = (x: number) => Math.round(x * 1e3) / 1e3;
