// Hardware classes of the trace simulator: what a worker of each class costs, holds and takes to
// start, and how a variant's profile on it is derived from its measured CPU profile. The
// accelerator factors are assumptions, stated here and in docs/simulator.md, not measurements:
// this project can only profile CPUs. Pure data and arithmetic.
import type { CandidateProfile } from '../../actors/dispatcher/select-variant.js';

export interface HardwareClass {
  /** The class name workers and profiles carry. */
  name: string;
  /** What it stands for (an EC2 instance type, or "this machine"). */
  instanceType: string;
  /** List price of one worker, dollars per hour. */
  pricePerHour: number;
  /** Slots instances reserve: CPU threads, or concurrent model slots on an accelerator. */
  threads: number;
  memoryBytes: number;
  /** From the provisioning request until the worker serves. */
  startMs: number;
}

const GiB = 1024 ** 3;

/**
 * The paper's classes (INFaaS, ATC'21, section 6) at AWS on-demand list prices (us-east-1):
 * m5.2xlarge (8 vCPUs, 32 GiB) $0.384/h; p3.2xlarge (one V100 16 GB, 8 vCPUs) $3.06/h;
 * inf1.2xlarge (one Inferentia chip of 4 NeuronCores, 8 vCPUs) $0.362/h. Start times: about a
 * minute for an EC2 instance to boot and start a worker (an assumption; override with --start-ms).
 * An accelerator worker holds 4 instances at once (the model does not slow co-located instances
 * down: optimistic for accelerators).
 */
export const paperClasses: readonly HardwareClass[] = Object.freeze([
  { name: 'cpu', instanceType: 'm5.2xlarge', pricePerHour: 0.384, threads: 8, memoryBytes: 32 * GiB, startMs: 60_000 },
  { name: 'gpu', instanceType: 'p3.2xlarge', pricePerHour: 3.06, threads: 4, memoryBytes: 16 * GiB, startMs: 60_000 },
  { name: 'inf', instanceType: 'inf1.2xlarge', pricePerHour: 0.362, threads: 4, memoryBytes: 8 * GiB, startMs: 60_000 },
]);

/**
 * How a CPU profile becomes an accelerator profile. A batch's work is its CPU time in core-ms
 * (the profiled latency x the variant's threads); on the accelerator it takes
 * launchMs + work / speedup, and the instance reserves one slot. Only fp32 variants run there
 * (int8 here is ONNX Runtime's dynamic CPU quantisation). Loading adds loadExtraMs (driver
 * context, copying weights; Neuron compilation is assumed done ahead).
 *
 * The factors, chosen to reflect the published shape rather than any one model: a V100 runs small
 * CNNs 10-50x faster than a CPU core at large batches but pays ~0.4 ms of launch and copy per call,
 * so batch 1 of a tiny model is no faster; Inferentia is slower than a V100 at large batches and has
 * lower call overhead, at a tenth of the price.
 */
export interface AcceleratorFactors { launchMs: number; speedup: number; loadExtraMs: number }

export const acceleratorFactors: Readonly<Record<string, AcceleratorFactors>> = Object.freeze({
  gpu: { launchMs: 0.4, speedup: 30, loadExtraMs: 2000 },
  inf: { launchMs: 0.25, speedup: 12, loadExtraMs: 3000 },
});

/** The profile of a CPU-profiled variant on an accelerator class, or undefined where it cannot run. */
export function deriveProfile(cpu: CandidateProfile, cls: string, f: AcceleratorFactors): CandidateProfile | undefined {
  if (cpu.precision === 'int8') return undefined;
  const round = (x: number) => Math.round(x * 1e4) / 1e4;
  return {
    ...cpu, hardwareClass: cls, threads: 1, loadMs: cpu.loadMs + f.loadExtraMs,
    latency: cpu.latency.map((l) => ({ batch: l.batch, p50Ms: round(f.launchMs + (l.p50Ms * cpu.threads) / f.speedup) })),
  };
}

/**
 * Profiles for every class: the CPU profiles of `fromClass` renamed to `cpu`, plus the derived
 * accelerator ones. Variants are deduplicated by id (each keeps its first CPU profile).
 */
export function profilesForClasses(measured: readonly CandidateProfile[], fromClass: string, classes: readonly HardwareClass[], factors = acceleratorFactors): CandidateProfile[] {
  const cpu = measured.filter((p) => p.hardwareClass === fromClass);
  const out: CandidateProfile[] = [];
  for (const c of classes) {
    const f = factors[c.name];
    for (const p of cpu) {
      if (!f) out.push({ ...p, hardwareClass: c.name });
      else {
        const d = deriveProfile(p, c.name, f);
        if (d) out.push(d);
      }
    }
  }
  return out;
}

/** A class by name, or an error listing the known ones. */
export function classNamed(classes: readonly HardwareClass[], name: string): HardwareClass {
  const c = classes.find((x) => x.name === name);
  if (!c) throw new Error(`unknown hardware class "${name}" (one of: ${classes.map((x) => x.name).join(', ')})`);
  return c;
}
