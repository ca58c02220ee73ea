// The model-autoscaler's effects: build a snapshot of this worker's instances and the variants it
// could switch to, ask the pure policy (model-autoscaler/plan.ts) what to do, and do it; every
// decision is published as an event with its reasons and numbers.
import { performance } from 'node:perf_hooks';
import type { WorkerEventType, WorkerEvent } from '../../schemas/worker.js';
import { keys } from '../../subjects/index.js';
import type { Logger } from '../../runtime/log.js';
import type { RegistryView } from '../../runtime/views/registry-view.js';
import { capacityQps, latencyModel, roundElements, type VariantInstance } from '../instance/index.js';
import {
  initialScalingState, planWorkerScaling,
  type ScalingAction, type ScalingSettings, type ScalingState, type ScalingVariant, type WorkerScalingSnapshot,
} from '../model-autoscaler/index.js';

export interface ScalingDeps {
  settings: ScalingSettings;
  threads: number;
  memoryBytes: number;
  hardwareClass: string;
  view: RegistryView;
  log: Logger;
  instances: () => VariantInstance[];
  startInstance: (variant: string) => VariantInstance;
  /** A switch completed: unpinned queries for `from` now go to `to`. */
  replaced: (from: string, to: string) => void;
  event: (type: WorkerEventType, message: string, fields?: Partial<WorkerEvent>) => void;
  /** What the operator's console set now (infaas_settings): a pause, and knobs over `settings`. */
  console?: () => { paused: boolean; settings: Partial<ScalingSettings> };
  /** Instances the operator pinned against idle unload. */
  isPinned?: (instanceId: string) => boolean;
}

const elementsOf = (m: { elements: number; weight: number } | undefined): number | undefined =>
  m && m.weight > 0 ? roundElements(m.elements / m.weight) : undefined;

/** Event-loop utilisation above which the loop counts as needing a core of its own. */
const LOOP_BUSY = 0.8;

export class ScalingRunner {
  private state: ScalingState = initialScalingState;
  private loop = performance.eventLoopUtilization();

  /**
   * Cores instances may keep busy: the worker's, less one while its own event loop is busy more
   * than LOOP_BUSY of the time (decoding, routing and answering queries takes a core too). Without this, a 2-core
   * worker under a query storm ran two busy session threads beside a saturated event loop, and
   * answered 56 q/s within the objective instead of ~900 (docs/benchmarks.md, saturation step).
   */
  private instanceCores(): number {
    const now = performance.eventLoopUtilization();
    const elu = performance.eventLoopUtilization(now, this.loop).utilization;
    this.loop = now;
    return Math.max(1, this.deps.threads - (elu > LOOP_BUSY ? 1 : 0));
  }

  constructor(private readonly deps: ScalingDeps) {}

  /**
   * The variants of every model with an instance here, with this class's finished profiles. A
   * variant's capacity is judged at the input size its model's instances here were sent (mean input
   * elements, weighted by arrivals; profiles with sizes only), else at the profile's largest size.
   */
  variantsFor(models: Set<string>, instances: readonly VariantInstance[] = []): Map<string, ScalingVariant> {
    const mix = new Map<string, { elements: number; weight: number }>();
    for (const i of instances) {
      if (i.servedElements === undefined) continue;
      const w = Math.max(i.recentArrivalRate, 1e-6);
      const m = mix.get(i.spec.model) ?? { elements: 0, weight: 0 };
      m.elements += i.servedElements * w;
      m.weight += w;
      mix.set(i.spec.model, m);
    }
    const out = new Map<string, ScalingVariant>();
    for (const v of this.deps.view.variants.values()) {
      if (!models.has(v.model)) continue;
      const p = this.deps.view.profiles.get(keys.profile(v.id, this.deps.hardwareClass));
      if (!p || p.status !== 'done' || !p.latency || p.latency.length === 0) continue;
      out.set(v.id, {
        id: v.id, model: v.model, precision: v.precision, maxBatch: v.maxBatch, threads: v.intraOpThreads,
        accuracy: p.accuracy ?? 0, loadMs: p.loadMs ?? 0, memoryBytes: p.peakMemoryBytes ?? v.sizeBytes * 2,
        capacityQps: capacityQps(latencyModel({ latency: p.latency, ...(p.sizes ? { sizes: p.sizes } : {}) })(elementsOf(mix.get(v.model))), v.maxBatch),
      });
    }
    return out;
  }

  snapshot(now = Date.now()): WorkerScalingSnapshot {
    const instances = this.deps.instances();
    return {
      now, threads: this.instanceCores(), memoryBytes: this.deps.memoryBytes,
      instances: instances.map((i) => ({
        id: i.spec.id, variant: i.spec.variant, state: i.state, arrivalRate: i.recentArrivalRate, pinnedShare: i.recentPinnedShare,
        ...(this.deps.isPinned?.(i.spec.id) ? { pinned: true } : {}),
        queueLength: i.queueLength, idleMs: now - i.lastArrivalAt, threads: i.spec.threads, memoryBytes: i.spec.memoryBytes,
      })),
      variants: this.variantsFor(new Set(instances.map((i) => i.spec.model)), instances),
    };
  }

  private paused = false;

  async round(): Promise<void> {
    this.unloadUnregistered();
    const fromConsole = this.deps.console?.() ?? { paused: false, settings: {} };
    if (fromConsole.paused !== this.paused) {
      this.paused = fromConsole.paused;
      this.deps.log.info({ paused: this.paused }, this.paused ? 'model-autoscaler paused from the console' : 'model-autoscaler resumed from the console');
    }
    if (this.paused) return;
    const plan = planWorkerScaling(this.state, this.snapshot(), { ...this.deps.settings, ...fromConsole.settings });
    this.state = plan.state;
    for (const a of plan.actions) await this.carryOut(a);
  }

  /** Instances of variants no longer in the registry (their model was unregistered) are drained away. */
  private unloadUnregistered(): void {
    for (const i of this.deps.instances()) {
      const v = this.deps.view.variants.get(i.spec.variant);
      const m = v && this.deps.view.models.get(v.model);
      if (m) continue;
      if (i.state === 'draining') continue;
      this.deps.event('autoscaler.decision', `unload ${i.spec.variant}: its model is no longer registered`, {
        variant: i.spec.variant, instance: i.spec.id, details: { action: 'unload', reason: 'unregistered' },
      });
      void i.drain();
    }
  }

  private async carryOut(a: ScalingAction): Promise<void> {
    const { log, event } = this.deps;
    const byId = new Map(this.deps.instances().map((i) => [i.spec.id, i]));
    const variant = a.type === 'switch' ? a.from : a.variant;
    event('autoscaler.decision', `${a.type}${a.type === 'switch' ? ` (${a.reason}) ${a.from} -> ${a.to}` : ` ${a.variant}`}: ${a.why}`, {
      variant, ...('instance' in a ? { instance: a.instance } : {}), details: { action: a.type, ...a.details },
    });
    log.info({ action: a.type, variant, why: a.why }, 'autoscaler decision');
    try {
      switch (a.type) {
        case 'replicate':
          this.deps.startInstance(a.variant);
          break;
        case 'switch': {
          // Make before break: the old instance keeps serving until the new one is active.
          const next = this.deps.startInstance(a.to);
          void next.loaded.then((s) => {
            if (s === 'failed') {
              log.warn({ to: a.to, reason: next.reason }, 'switch target failed to load; keeping the old instance');
              return;
            }
            if (!this.deps.instances().some((i) => i.spec.variant === a.from && i.spec.id !== a.instance)) this.deps.replaced(a.from, a.to);
            const old = byId.get(a.instance);
            const moved = old?.handOver(next) ?? 0;
            if (moved > 0) log.info({ from: a.instance, to: next.spec.id, moved }, 'queued queries handed over');
            void old?.drain();
          });
          break;
        }
        case 'remove':
        case 'unload':
          void byId.get(a.instance)?.drain();
          break;
        case 'mitigate':
          // The controller (VM-autoscaler) listens for these and places the variant elsewhere.
          event('mitigation.requested', `${a.variant} needs capacity elsewhere: ${a.why}`, {
            variant: a.variant, instance: a.instance, details: a.details,
          });
          break;
      }
    } catch (err) {
      log.warn({ action: a.type, err: (err as Error).message }, 'autoscaler action failed');
    }
  }
}
