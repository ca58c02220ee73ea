// `infaas bench`'s command-line flags to BenchOptions: which load (rate, shape, trace, concurrency),
// the run's length, one query class or a mix; refuses combinations that mean nothing, with the reason.
import { cutTrace, namedShape, parseMix, parseTrace, scaleTrace, shapeNames, type QueryClass, type RateTrace } from '../trace.js';
import { benchDefaults, checkBenchOptions, type BenchLoad, type BenchOptions, type BenchTarget } from './run.js';

/** The flags as given: absent means not given (defaults are applied here, so a mix can refuse what it replaces). */
export interface BenchFlags {
  rate?: number;
  shape?: string;
  trace?: string;
  concurrency?: number;
  rateScale?: number;
  timeScale?: number;
  duration?: number;
  warmup?: number;
  window?: number;
  seed?: number;
  task?: string;
  model?: string;
  variant?: string;
  latency?: number;
  minAccuracy?: number;
  mix?: string;
  retry?: boolean;
}

export class BenchOptionError extends Error {
  override name = 'BenchOptionError';
}

function refuse(message: string): never {
  throw new BenchOptionError(message);
}

/** Reads a file's text (injected: tests give text without files). */
export type ReadText = (path: string) => string;

/**
 * BenchOptions from the flags. `defaultTask` is the task of model-less queries when no target is
 * given. A shape is built over warmup + duration; a trace sets warmup + duration unless --duration
 * cuts it shorter.
 */
export function benchOptions(f: BenchFlags, readText: ReadText, defaultTask: string): BenchOptions {
  const loads = (['rate', 'shape', 'trace', 'concurrency'] as const).filter((k) => f[k] !== undefined).map((k) => `--${k}`);
  if (loads.length > 1) {
    refuse(`${loads.join(' and ')}: one load at a time (--rate: Poisson at a constant rate; --shape or --trace: Poisson following a ` +
      `rate over time, give --rate-scale to change its rates; --concurrency: closed loop)`);
  }
  if (f.rateScale !== undefined && f.shape === undefined && f.trace === undefined) refuse('--rate-scale scales the rates of --shape or --trace: give one of them');
  if (f.timeScale !== undefined && f.trace === undefined) refuse('--time-scale stretches a --trace file (a --shape is built over warmup + duration)');
  const warmupS = f.warmup ?? benchDefaults.warmupS;
  const windowS = f.window ?? benchDefaults.windowS;
  const seed = f.seed ?? benchDefaults.seed;
  let durationS = f.duration ?? benchDefaults.durationS;
  let load: BenchLoad;
  if (f.shape !== undefined) {
    if (!shapeNames.includes(f.shape)) refuse(`--shape ${f.shape}: one of ${shapeNames.join(', ')}`);
    load = { kind: 'trace', trace: namedShape(f.shape, warmupS + durationS, f.rateScale ?? 1, seed) };
  } else if (f.trace !== undefined) {
    const trace = readTrace(f.trace, readText, f.rateScale, f.timeScale);
    if (f.duration === undefined) {
      durationS = trace.durationS - warmupS;
      if (!(durationS > 1e-9)) refuse(`--trace ${f.trace} lasts ${trace.durationS} s: no longer than the warmup (${warmupS} s); give a shorter --warmup or --time-scale`);
    } else if (warmupS + durationS > trace.durationS + 1e-9) {
      refuse(`--trace ${f.trace} lasts ${trace.durationS} s: shorter than --warmup + --duration (${warmupS + durationS} s)`);
    }
    load = { kind: 'trace', trace: cutTrace(trace, Math.min(trace.durationS, warmupS + durationS)) };
  } else if (f.rate !== undefined) {
    load = { kind: 'open', rate: f.rate };
  } else {
    load = { kind: 'closed', concurrency: f.concurrency ?? 1 };
  }
  const base = { load, durationS, warmupS, windowS, seed, retry: f.retry ?? benchDefaults.retry };
  if (f.mix === undefined) {
    if (f.model !== undefined && f.variant !== undefined) refuse('--model or --variant, not both');
    const target: BenchTarget = f.variant !== undefined ? { variant: f.variant } : f.model !== undefined ? { model: f.model } : { task: f.task ?? defaultTask };
    return { ...base, target, latencyMs: f.latency ?? benchDefaults.latencyMs, ...(f.minAccuracy !== undefined ? { minAccuracy: f.minAccuracy } : {}) };
  }
  const replaced = (['task', 'model', 'variant', 'latency', 'minAccuracy'] as const).filter((k) => f[k] !== undefined);
  if (replaced.length > 0) {
    refuse(`--mix gives each class its target and objective: drop ${replaced.map((k) => `--${k === 'minAccuracy' ? 'min-accuracy' : k}`).join(', ')}`);
  }
  const options: BenchOptions = { ...base, mix: readMix(f.mix, readText) };
  try {
    return checkBenchOptions(options);
  } catch (e) {
    refuse(`--mix ${f.mix}: ${(e as Error).message.replace(/^bench: /, '')}`);
  }
}

function readTrace(path: string, readText: ReadText, rate?: number, time?: number): RateTrace {
  let trace: RateTrace;
  try {
    trace = parseTrace(readText(path), path);
  } catch (e) {
    refuse(`--trace ${path}: ${(e as Error).message}`);
  }
  return scaleTrace(trace, { rate, time });
}

function readMix(path: string, readText: ReadText): QueryClass[] {
  try {
    return parseMix(readText(path));
  } catch (e) {
    refuse(`--mix ${path}: ${(e as Error).message}`);
  }
}
