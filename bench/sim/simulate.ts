// The trace simulator: a discrete-event model of the whole system — clients, dispatcher, workers,
// instances, monitor, model-autoscaler, VM-autoscaler — that calls the SAME policy functions as the
// live actors: selection (dispatcher/select-variant.ts and the baselines), admission and shedding
// (instance/batching.ts drainMs, admit), batching (decideBatch, aimdUpdate), instance
// classification (monitor/classify.ts), the model-autoscaler (model-autoscaler/plan.ts) and the
// VM-autoscaler (vm-autoscaler/plan.ts). What it models instead of running: inference (a batch takes
// its profiled latency times seeded jitter, plus the per-batch overhead), the bus (fixed hop times),
// loading (the profiled load time), worker start-up (the class's start time). No I/O, no clock:
// the same inputs give the same run. docs/simulator.md states what is and is not modelled.
import { fixedVariant, policyNamed, workersFor } from '../../actors/dispatcher/baselines.js';
import type { SelectionPolicy } from '../../actors/dispatcher/host.js';
import { BUSY_CHECK_MS, DEAR_CHECK_MS, unplacedClasses, warmUpCheaper, warmUpWhenBusy, type CandidateProfile, type InstanceView, type Snapshot, type SelectionRequest, type WorkerView } from '../../actors/dispatcher/select-variant.js';
import {
  BATCH_OVERHEAD_MS, admit, aimdInitial, aimdUpdate, capacityQps, decideBatch, drainMs, latencyCurve,
  type AimdState, type BatchingMode,
} from '../../actors/instance/batching.js';
import { classifyInstance, defaultThresholds, initialClassifierState, type ClassifierState, type ClassifierThresholds } from '../../actors/monitor/classify.js';
import {
  defaultScalingSettings, initialScalingState, planWorkerScaling,
  type ScalingAction, type ScalingSettings, type ScalingState, type ScalingVariant,
} from '../../actors/model-autoscaler/plan.js';
import {
  defaultClusterScalingSettings, initialClusterScalingState, planClusterScaling,
  type ClusterScalingSettings, type ClusterScalingState,
} from '../../actors/vm-autoscaler/plan.js';
import { seededRandom } from '../../runtime/random.js';
import { assignClasses, expectedArrivals, traceArrivals, type QueryClass, type RateTrace } from '../trace.js';
import { EventQueue } from './events.js';
import type { HardwareClass } from './hardware.js';
import { SimStats, type SimWindow } from './metrics.js';
import type { WindowStats } from '../live/stats.js';

export interface SimOptions {
  /** Profiles per variant and hardware class (derived accelerator profiles included). */
  profiles: CandidateProfile[];
  classes: readonly HardwareClass[];
  /** Workers present from the start (not started by the VM-autoscaler, so never stopped by it). */
  initialWorkers: { hardwareClass: string; count: number }[];
  /** Instances loaded on the initial workers at time 0 (e.g. a demonstration left them). */
  initialInstances?: { variant: string; hardwareClass: string }[];
  /** Classes the VM-autoscaler may add workers of. */
  autoscaleClasses: string[];
  trace: RateTrace;
  mix: QueryClass[];
  seed: number;
  /** Selection policy by name (baselines.ts: infaas, fixed, fastest, cheapest, clipper). */
  policy: string;
  /** For fixed and clipper: the hardware class the developer deployed the fixed variant on (default: any). */
  fixedClass?: string;
  /** Model-autoscaler switches off (the fixed-variant baselines' workers); default: by policy. */
  replicationOnly?: boolean;
  /** Batching mode of every instance; default: by policy (aimd for clipper). */
  batching?: BatchingMode;
  scaling?: Partial<ScalingSettings>;
  cluster?: Partial<ClusterScalingSettings>;
  thresholds?: ClassifierThresholds;
  /** Window of the monitor and model-autoscaler (live: 1,000 ms) and of the VM-autoscaler (live: 2,000 ms). */
  monitorMs?: number;
  clusterMs?: number;
  /** One-way hops: client to dispatcher, dispatcher to worker, worker to client (ms). */
  hopMs?: number;
  /** The dispatcher's serving-path allowances (live defaults 2 and 1 ms). */
  pathOverheadMs?: number;
  pathAheadMs?: number;
  /** Relative spread of batch times around the profile: uniform in [1 - j, 1 + j]. */
  jitter?: number;
  /** Per-batch cost beyond the profiled inference (live: BATCH_OVERHEAD_MS). */
  batchOverheadMs?: number;
  /**
   * Inference runs this many times slower than profiled (CPU shared with other processes); the
   * instances' admission sees it too, as the live host learns its observed slowdown. Default 1.
   */
  slowdown?: number;
  /**
   * Each query's cost on its worker's event loop (decode, route, answer): a single server per
   * worker in front of its instances. Default 0 (not modelled).
   */
  workerLoopMs?: number;
  /**
   * Cores busy with other processes on each worker's machine (a client, nats-server). With this or
   * workerLoopMs set, a worker's cores are shared: a batch that starts while the running batches'
   * threads, the event loop's recent load and these exceed the worker's threads runs slower by
   * that ratio (fixed at its start). Default 0.
   */
  externalCores?: number;
  /** Clients retry retryable errors within the deadline (as QueryClient, at most twice). */
  retry?: boolean;
  windowS?: number;
  warmupS?: number;
  /** Keep every latency for overall percentiles (memory: 8 bytes per answer); default true. */
  exactPercentiles?: boolean;
  /** Called once per simulated window with progress (for long runs). */
  onProgress?: (simulatedS: number, durationS: number, queries: number) => void;
}

export interface SimDecision { atS: number; actor: 'model-autoscaler' | 'vm-autoscaler'; worker?: string; action: string; why: string }

export interface SimReport {
  policy: string;
  trace: { name: string; description: string; durationS: number };
  mix: QueryClass[];
  queries: number;
  events: number;
  windows: SimWindow[];
  overall: SimWindow;
  classes: Record<string, WindowStats>;
  decisions: SimDecision[];
  /** Worker-seconds by class over the run. */
  workerSeconds: Record<string, number>;
}

interface SimQuery {
  seq: number; cls: number; sentAt: number; deadline: number; tries: number; resends: number;
  variant?: string;
}

type WorkerState = 'starting' | 'up' | 'draining' | 'gone';

interface SimWorker {
  id: string; cls: HardwareClass; state: WorkerState; managed: boolean;
  requestedAt: number; endedAt?: number;
  /** When the worker's event loop is next free (workerLoopMs per query). */
  loopFreeAt: number;
  /** Queries through the event loop in the current monitor window, and its load (cores) over the last one. */
  loopQueries: number; loopLoad: number;
  instances: SimInstance[];
  scaling: ScalingState;
  view?: WorkerView;
}

type InstState = 'loading' | 'active' | 'overloaded' | 'interfered' | 'draining' | 'unloaded';

interface SimInstance {
  id: string; p: CandidateProfile; worker: SimWorker; state: InstState;
  curve: (rows: number) => number; capacity: number;
  queue: SimQuery[]; queuedRows: number;
  running: number; runningRows: number[];
  aimd?: AimdState;
  view: InstanceView;
  classifier: ClassifierState;
  lastQueue: number;
  lastArrivalAt: number; lastRate: number;
  // Window counters.
  arrivals: number; completions: number; misses: number;
  observedMs: number; profiledMs: number;
  /** Busy time since the VM-autoscaler last looked (its CPU figure). */
  clusterBusyMs: number;
  shedAt: number;
  onLoaded?: () => void;
}

type Ev =
  | { t: 'arrive'; q: SimQuery }
  | { t: 'dispatch'; q: SimQuery }
  | { t: 'enqueue'; q: SimQuery; inst: SimInstance }
  | { t: 'done'; inst: SimInstance; batch: SimQuery[]; rows: number; ms: number }
  | { t: 'loaded'; inst: SimInstance }
  | { t: 'worker-up'; w: SimWorker }
  | { t: 'outcome'; q: SimQuery; ok: boolean; code?: string; retryAfterMs?: number; cost?: number; variant?: string; accuracy?: number }
  | { t: 'monitor' }
  | { t: 'cluster' };

const ROOM = 'no worker can run a feasible variant in time';

export function simulate(o: SimOptions): SimReport {
  return new Simulation(o).run();
}

class Simulation {
  private readonly q = new EventQueue<Ev>();
  private now = 0;
  private readonly policy: SelectionPolicy;
  private readonly scalingSettings: ScalingSettings;
  private readonly clusterSettings: ClusterScalingSettings;
  private readonly thresholds: ClassifierThresholds;
  private readonly batching: BatchingMode;
  private readonly workers: SimWorker[] = [];
  private readonly workerById = new Map<string, SimWorker>();
  /** When each running variant was last checked for a much cheaper one (the dispatcher's warmUpCheaper, once a second). */
  private readonly dearCheckAt = new Map<string, number>();
  private readonly busyCheckAt = new Map<string, number>();
  private readonly scalingVariants = new Map<string, Map<string, ScalingVariant>>();
  private readonly byClass = new Map<string, HardwareClass>();
  /** Price per thread-hour of every class (the provisioner's price list). */
  private readonly classPrices = new Map<string, number>();
  private readonly profileOf = new Map<string, CandidateProfile>();
  private snap?: Snapshot;
  private clusterState: ClusterScalingState = initialClusterScalingState;
  private unplaced: Record<string, number> = {};
  private mitigations: Record<string, number> = {};
  private readonly random: () => number;
  private readonly stats: SimStats;
  private readonly decisions: SimDecision[] = [];
  private readonly monitorMs: number;
  private readonly clusterMs: number;
  private readonly hop: number;
  private readonly pathOverheadMs: number;
  private readonly pathAheadMs: number;
  private readonly jitter: number;
  private readonly overheadMs: number;
  private readonly slowdown: number;
  private readonly loopMs: number;
  private readonly externalCores: number;
  private readonly windowS: number;
  private readonly endMs: number;
  private ids = 0;
  private events = 0;
  private queries = 0;
  private outcomes = 0;

  constructor(private readonly o: SimOptions) {
    const fixed = o.policy === 'fixed' || o.policy === 'clipper';
    this.policy = fixed && o.fixedClass !== undefined ? fixedVariant(undefined, o.fixedClass) : policyNamed(o.policy);
    const workers = workersFor(o.policy);
    this.scalingSettings = { ...defaultScalingSettings, ...(o.replicationOnly ?? workers.replicationOnly ? { switches: false } : {}), ...o.scaling };
    this.clusterSettings = { ...defaultClusterScalingSettings, ...o.cluster };
    this.thresholds = o.thresholds ?? defaultThresholds;
    this.batching = o.batching ?? workers.batching;
    for (const c of o.classes) { this.byClass.set(c.name, c); this.classPrices.set(c.name, c.pricePerHour / c.threads); }
    for (const p of o.profiles) this.profileOf.set(`${p.variantId}@${p.hardwareClass}`, p);
    this.random = seededRandom(o.seed + 7);
    this.monitorMs = o.monitorMs ?? 1000;
    this.clusterMs = o.clusterMs ?? 2000;
    this.hop = o.hopMs ?? 0.3;
    this.pathOverheadMs = o.pathOverheadMs ?? 2;
    this.pathAheadMs = o.pathAheadMs ?? 1;
    this.jitter = o.jitter ?? 0.05;
    this.overheadMs = o.batchOverheadMs ?? BATCH_OVERHEAD_MS;
    this.slowdown = o.slowdown ?? 1;
    this.loopMs = o.workerLoopMs ?? 0;
    this.externalCores = o.externalCores ?? 0;
    this.windowS = o.windowS ?? Math.max(1, o.trace.durationS / 200);
    this.endMs = o.trace.durationS * 1000;
    this.stats = new SimStats(this.windowS, o.warmupS ?? 0, o.exactPercentiles ?? true);
  }

  run(): SimReport {
    const o = this.o;
    for (const { hardwareClass, count } of o.initialWorkers) {
      for (let i = 0; i < count; i++) this.workerUp(this.newWorker(hardwareClass, false));
    }
    for (const { variant, hardwareClass } of o.initialInstances ?? []) {
      const w = this.workers.find((x) => x.cls.name === hardwareClass && x.state === 'up');
      const p = this.profileOf.get(`${variant}@${hardwareClass}`);
      if (!w || !p) throw new Error(`initial instance ${variant}@${hardwareClass}: no such worker or profile`);
      const inst = this.newInstance(w, p);
      this.setLoaded(inst);
    }
    const arrivals = traceArrivals(o.trace, o.seed);
    const classes = assignClasses(arrivals.length, o.mix, o.seed);
    // Arrivals are fed lazily (one pending at a time) so a day-long trace does not fill the heap.
    let next = 0;
    const feed = () => {
      if (next >= arrivals.length) return;
      const c = o.mix[classes[next]];
      this.q.push(arrivals[next], { t: 'arrive', q: { seq: next, cls: classes[next], sentAt: arrivals[next], deadline: arrivals[next] + c.latencyMs, tries: 0, resends: 0 } });
      next++;
    };
    feed();
    this.q.push(this.monitorMs, { t: 'monitor' });
    this.q.push(this.clusterMs, { t: 'cluster' });
    let progressAt = 0;
    for (let e = this.q.pop(); e; e = this.q.pop()) {
      // Periodic events stop at the end of the trace; the rest runs until every query has its outcome.
      if ((e.item.t === 'monitor' || e.item.t === 'cluster') && e.time > this.endMs && this.outcomes === this.queries && next >= arrivals.length) continue;
      this.now = e.time;
      this.events++;
      if (e.item.t === 'arrive') { this.queries++; this.stats.sent(e.item.q.sentAt); feed(); }
      this.handle(e.item);
      if (o.onProgress && this.now - progressAt >= this.windowS * 1000) { progressAt = this.now; o.onProgress(Math.min(this.now, this.endMs) / 1000, o.trace.durationS, this.queries); }
    }
    if (this.outcomes !== this.queries) throw new Error(`simulator bug: ${this.queries} queries, ${this.outcomes} outcomes`);
    const end = Math.max(this.endMs, this.now);
    const spans = this.workers.map((w) => ({ from: w.requestedAt, to: w.endedAt ?? end, price: w.cls.pricePerHour, cls: w.cls.name }));
    const provisioned = (fromS: number, toS: number) => spans.reduce((a, s) => a + (s.price * Math.max(0, Math.min(s.to, toS * 1000) - Math.max(s.from, fromS * 1000))) / 3_600_000, 0);
    const { windows, overall, classes: byClass } = this.stats.finish(o.trace.durationS, provisioned, (a, b) => expectedArrivals(o.trace, a, b));
    const workerSeconds: Record<string, number> = {};
    for (const s of spans) workerSeconds[s.cls] = (workerSeconds[s.cls] ?? 0) + (Math.min(s.to, this.endMs) - Math.min(s.from, this.endMs)) / 1000;
    return {
      policy: o.policy, trace: { name: o.trace.name, description: o.trace.description, durationS: o.trace.durationS }, mix: o.mix,
      queries: this.queries, events: this.events, windows, overall, classes: byClass, decisions: this.decisions, workerSeconds,
    };
  }

  private handle(e: Ev): void {
    switch (e.t) {
      case 'arrive': this.q.push(this.now + this.hop, { t: 'dispatch', q: e.q }); break;
      case 'dispatch': this.dispatch(e.q); break;
      case 'enqueue': this.enqueue(e.inst, e.q); break;
      case 'done': this.batchDone(e.inst, e.batch, e.rows, e.ms); break;
      case 'loaded': if (e.inst.state === 'loading') this.setLoaded(e.inst); break;
      case 'worker-up': this.workerUp(e.w); break;
      case 'outcome': this.outcome(e); break;
      case 'monitor': this.monitorTick(); this.q.push(this.now + this.monitorMs, { t: 'monitor' }); break;
      case 'cluster': this.clusterTick(); this.q.push(this.now + this.clusterMs, { t: 'cluster' }); break;
    }
  }

  // --- The client -------------------------------------------------------------------------------

  /** An answer or error reaches the client: retryable errors are retried within the deadline (QueryClient). */
  private outcome(e: Extract<Ev, { t: 'outcome' }>): void {
    const q = e.q;
    const c = this.o.mix[q.cls];
    if (!e.ok && e.retryAfterMs !== undefined && (this.o.retry ?? true) && q.tries < 2 && this.now + e.retryAfterMs + 1 < q.deadline) {
      q.tries++;
      this.q.push(this.now + e.retryAfterMs + this.hop, { t: 'dispatch', q });
      return;
    }
    this.outcomes++;
    this.stats.record({
      sentAt: q.sentAt, doneAt: this.now, objectiveMs: c.latencyMs, cls: c.name, ok: e.ok,
      ...(e.code ? { code: e.code } : {}), ...(e.variant ? { variant: e.variant } : {}),
      ...(e.cost !== undefined ? { cost: e.cost } : {}), ...(e.accuracy !== undefined ? { promisedAccuracy: e.accuracy } : {}),
    });
  }

  /** An answer or error sent back to the client now (one hop). */
  private answer(q: SimQuery, r: Omit<Extract<Ev, { t: 'outcome' }>, 't' | 'q'>): void {
    this.q.push(this.now + this.hop, { t: 'outcome', q, ...r });
  }

  // --- The dispatcher ---------------------------------------------------------------------------

  private snapshot(): Snapshot {
    if (this.snap) return this.snap;
    const workers = new Map<string, WorkerView>();
    const instances: InstanceView[] = [];
    for (const w of this.workers) {
      if (w.state !== 'up') continue;
      let threads = 0;
      let memory = 0;
      for (const i of w.instances) {
        if (i.state === 'unloaded') continue;
        threads += i.p.threads;
        memory += i.p.peakMemoryBytes;
        i.view.state = i.state;
        instances.push(i.view);
      }
      w.view = { id: w.id, hardwareClass: w.cls.name, pricePerThreadHour: w.cls.pricePerHour / w.cls.threads, freeThreads: w.cls.threads - threads, freeMemoryBytes: w.cls.memoryBytes - memory };
      workers.set(w.id, w.view);
    }
    this.snap = { profiles: this.o.profiles, workers, instances };
    return this.snap;
  }

  /** The structure changed (an instance or worker came or went, or changed state): a new snapshot object. */
  private dirty(): void {
    this.snap = undefined;
  }

  private dispatch(q: SimQuery): void {
    const c = this.o.mix[q.cls];
    const now = this.now;
    const budgetMs = Math.round((q.deadline - now) * 100) / 100;
    const request: SelectionRequest = {
      ...c.target, batch: 1, latencyMs: Math.min(c.latencyMs - this.pathOverheadMs, budgetMs - this.pathAheadMs),
      minAccuracy: c.minAccuracy ?? 0, now,
    };
    const snap = this.snapshot();
    const sel = this.policy(snap, request);
    if (budgetMs <= 0 && sel.kind !== 'infeasible') return this.answer(q, { ok: false, code: 'DEADLINE_EXCEEDED' });
    if (sel.kind === 'infeasible' && sel.reason === ROOM && snap.workers.size > 0) {
      const warm = this.policy(snap, { ...request, ignoreLoadTime: true });
      if (warm.kind === 'load') {
        const w = this.workerById.get(warm.workerId)!;
        const p = this.profileOf.get(`${warm.variantId}@${w.cls.name}`)!;
        this.newInstance(w, p);
        return this.answer(q, { ok: false, code: 'INSTANCE_LOADING', retryAfterMs: Math.max(1, warm.expectedMs) });
      }
    }
    if (sel.kind === 'busy' && sel.loading) return this.answer(q, { ok: false, code: 'INSTANCE_LOADING', retryAfterMs: Math.max(1, Math.ceil(sel.retryAfterMs)) });
    if (sel.kind === 'busy') {
      this.noteUnplaced(request);
      if (now >= (this.busyCheckAt.get(sel.variantId) ?? 0)) {
        this.busyCheckAt.set(sel.variantId, now + BUSY_CHECK_MS);
        const warm = warmUpWhenBusy(this.policy, snap, request);
        if (warm) {
          const w = this.workerById.get(warm.workerId)!;
          this.newInstance(w, this.profileOf.get(`${warm.variantId}@${w.cls.name}`)!);
        }
      }
      return this.answer(q, { ok: false, code: 'NO_CAPACITY', retryAfterMs: Math.max(1, Math.ceil(sel.retryAfterMs)) });
    }
    if (sel.kind === 'infeasible') {
      if (snap.workers.size === 0 || sel.reason === ROOM) this.noteUnplaced(request);
      if (snap.workers.size === 0) return this.answer(q, { ok: false, code: 'NO_WORKER', retryAfterMs: 1000 });
      if (budgetMs < c.latencyMs) {
        const whole = this.policy(snap, { ...request, latencyMs: c.latencyMs - this.pathOverheadMs });
        if (whole.kind !== 'infeasible') return this.answer(q, { ok: false, code: 'DEADLINE_EXCEEDED' });
        if (whole.reason === ROOM) return this.answer(q, { ok: false, code: 'NO_CAPACITY', retryAfterMs: 1000 });
        return this.answer(q, { ok: false, code: 'INFEASIBLE' });
      }
      if (sel.reason === ROOM) return this.answer(q, { ok: false, code: 'NO_CAPACITY', retryAfterMs: 1000 });
      return this.answer(q, { ok: false, code: 'INFEASIBLE' });
    }
    if (sel.kind === 'running' && now >= (this.dearCheckAt.get(sel.variantId) ?? 0)) {
      this.dearCheckAt.set(sel.variantId, now + DEAR_CHECK_MS);
      const cheaper = warmUpCheaper(this.policy, snap, request, sel);
      if (cheaper) {
        const cw = this.workerById.get(cheaper.workerId)!;
        this.newInstance(cw, this.profileOf.get(`${cheaper.variantId}@${cw.cls.name}`)!);
      }
    }
    const w = this.workerById.get(sel.workerId)!;
    // The worker routes to its least-loaded replica of the variant (actors/worker/routing.ts).
    let inst: SimInstance | undefined;
    for (const i of w.instances) {
      if (i.p.variantId !== sel.variantId || i.state === 'unloaded' || i.state === 'draining') continue;
      if (!inst || i.queuedRows + i.running < inst.queuedRows + inst.running) inst = i;
    }
    if (sel.kind === 'load' || !inst) inst = this.newInstance(w, this.profileOf.get(`${sel.variantId}@${w.cls.name}`)!);
    inst.view.outstanding++;
    // The worker's event loop takes queries one at a time.
    const at = Math.max(now + this.hop, w.loopFreeAt) + this.loopMs;
    if (this.loopMs > 0) { w.loopFreeAt = at; w.loopQueries++; }
    this.q.push(at, { t: 'enqueue', q, inst });
  }

  /** Demand that found no room, for the class it asks for (the dispatcher's report to the VM-autoscaler). */
  private noteUnplaced(r: SelectionRequest): void {
    for (const c of unplacedClasses(this.snapshot(), r, this.classPrices)) this.unplaced[c] = (this.unplaced[c] ?? 0) + 1;
  }

  // --- Instances --------------------------------------------------------------------------------

  private newInstance(w: SimWorker, p: CandidateProfile): SimInstance {
    const curve = latencyCurve(p.latency);
    const inst: SimInstance = {
      id: `i${++this.ids}`, p, worker: w, state: 'loading', curve, capacity: capacityQps(curve, p.maxBatch, this.overheadMs),
      queue: [], queuedRows: 0, running: 0, runningRows: [],
      ...(this.batching === 'aimd' ? { aimd: aimdInitial(p.maxBatch) } : {}),
      view: { variantId: p.variantId, workerId: w.id, state: 'loading', outstanding: 0, reportedAt: this.now },
      classifier: initialClassifierState, lastQueue: 0, lastArrivalAt: this.now, lastRate: 0,
      arrivals: 0, completions: 0, misses: 0, observedMs: 0, profiledMs: 0, clusterBusyMs: 0, shedAt: -Infinity,
    };
    w.instances.push(inst);
    this.q.push(this.now + p.loadMs, { t: 'loaded', inst });
    this.dirty();
    return inst;
  }

  private setLoaded(inst: SimInstance): void {
    inst.state = 'active';
    this.dirty();
    inst.onLoaded?.();
    this.pump(inst);
  }

  private enqueue(inst: SimInstance, q: SimQuery): void {
    if (inst.state === 'draining' || inst.state === 'unloaded') {
      // Refused (WORKER_DRAINING / VARIANT_NOT_LOADED ack): the dispatcher decides again, at most twice.
      if (q.resends++ < 2) { this.dispatch(q); return; }
      return this.answer(q, { ok: false, code: 'VARIANT_NOT_LOADED', retryAfterMs: 0 });
    }
    inst.arrivals++;
    inst.lastArrivalAt = this.now;
    if (inst.state !== 'loading') {
      const { ok, needMs } = admit(this.now, q.deadline, this.aheadMs(inst), 1, inst.curve, this.slowdown, this.overheadMs);
      if (!ok) {
        inst.misses++;
        return this.answer(q, { ok: false, code: 'NO_CAPACITY', retryAfterMs: Math.ceil(this.now + needMs - q.deadline) });
      }
    }
    inst.queue.push(q);
    inst.queuedRows++;
    this.pump(inst);
  }

  private batchCap(inst: SimInstance): number {
    return inst.aimd ? inst.aimd.cap : inst.p.maxBatch;
  }

  private aheadMs(inst: SimInstance, rows = inst.queuedRows): number {
    if (rows === 0 && inst.running === 0) return 0;
    return drainMs({ runningRows: inst.runningRows, queuedRows: rows, maxBatch: this.batchCap(inst), latencyMs: inst.curve, slowdown: this.slowdown, extraMs: this.overheadMs });
  }

  private pump(inst: SimInstance): void {
    if (inst.queue.length === 0 || inst.state === 'loading' || inst.state === 'unloaded') return;
    const now = this.now;
    const single = inst.curve(1) * this.slowdown;
    // Expired: cannot finish even alone (answered DEADLINE_EXCEEDED, not computed).
    if (inst.queue.some((q) => now + single > q.deadline)) {
      inst.queue = inst.queue.filter((q) => {
        if (now + single <= q.deadline) return true;
        inst.queuedRows--; inst.misses++;
        this.answer(q, { ok: false, code: 'DEADLINE_EXCEEDED' });
        return false;
      });
    }
    // The host judges the queue against the drain time every SHED_EVERY_MS (5 ms), not per event.
    if (now - inst.shedAt >= 5) { inst.shedAt = now; this.shed(inst); }
    if (inst.queue.length === 0 || inst.running > 0) return;
    const earliest = inst.queue.reduce((m, q) => Math.min(m, q.deadline), Infinity);
    const d = decideBatch({ now, queued: inst.queue.length, earliestDeadline: earliest, rows: inst.queuedRows, maxBatch: this.batchCap(inst), latencyMs: inst.curve, overheadMs: this.overheadMs, running: inst.running });
    if (d.action !== 'run') return;
    const batch = inst.queue.splice(0, d.size);
    inst.queuedRows -= batch.length;
    const rows = batch.length;
    const profiled = inst.curve(rows);
    const ms = profiled * this.slowdown * this.contention(inst) * (1 + this.jitter * (2 * this.random() - 1));
    inst.running++;
    inst.runningRows.push(rows);
    inst.observedMs += ms; inst.profiledMs += profiled;
    this.q.push(now + ms + this.overheadMs, { t: 'done', inst, batch, rows, ms });
  }

  /** How much slower a batch starting now on this instance's worker runs for sharing its cores (1: not at all). */
  private contention(inst: SimInstance): number {
    if (this.loopMs === 0 && this.externalCores === 0) return 1;
    const w = inst.worker;
    let threads = 0;
    for (const i of w.instances) if (i.running > 0) threads += i.p.threads;
    return Math.max(1, (threads + w.loopLoad + this.externalCores) / w.cls.threads);
  }

  /** Queued queries whose place in the queue finishes after their deadline are answered now (the host's shed). */
  private shed(inst: SimInstance): void {
    let rows = 0;
    let late = false;
    for (const q of inst.queue) {
      rows++;
      if (this.now + this.aheadMs(inst, rows) > q.deadline) { late = true; break; }
    }
    if (!late) return;
    const keep: SimQuery[] = [];
    rows = 0;
    for (const q of inst.queue) {
      if (this.now + this.aheadMs(inst, rows + 1) <= q.deadline) { keep.push(q); rows++; continue; }
      inst.misses++;
      this.answer(q, { ok: false, code: 'DEADLINE_EXCEEDED' });
    }
    inst.queue = keep;
    inst.queuedRows = rows;
  }

  private batchDone(inst: SimInstance, batch: SimQuery[], rows: number, ms: number): void {
    inst.running--;
    inst.runningRows.splice(inst.runningRows.indexOf(rows), 1);
    inst.clusterBusyMs += ms + this.overheadMs;
    inst.completions += batch.length;
    const w = inst.worker;
    const perRow = (w.cls.pricePerHour / 3_600_000) * ms * Math.min(1, inst.p.threads / w.cls.threads) / rows;
    for (const q of batch) this.answer(q, { ok: true, cost: perRow, variant: `${inst.p.variantId}@${w.cls.name}`, accuracy: inst.p.accuracy });
    if (inst.aimd) {
      const objectiveMs = batch.reduce((m, q) => Math.min(m, this.o.mix[q.cls].latencyMs), Infinity);
      inst.aimd = aimdUpdate(inst.aimd, { rows, ms, objectiveMs });
    }
    if (inst.state === 'draining' && inst.queue.length === 0 && inst.running === 0) { this.unload(inst); return; }
    this.pump(inst);
  }

  private drain(inst: SimInstance): void {
    if (inst.state === 'unloaded' || inst.state === 'draining') return;
    inst.state = 'draining';
    this.dirty();
    if (inst.queue.length === 0 && inst.running === 0) this.unload(inst);
  }

  private unload(inst: SimInstance): void {
    inst.state = 'unloaded';
    inst.worker.instances = inst.worker.instances.filter((i) => i !== inst);
    this.dirty();
    // Anything still queued (a drained loading instance) is refused back to the dispatcher.
    const queued = inst.queue.splice(0);
    inst.queuedRows = 0;
    for (const q of queued) this.enqueue(inst, q);
    const w = inst.worker;
    if (w.state === 'draining' && w.instances.length === 0) { w.state = 'gone'; w.endedAt = this.now; this.dirty(); }
  }

  // --- Monitor and model-autoscaler (per worker, each monitor window) ---------------------------

  private monitorTick(): void {
    const now = this.now;
    const secs = this.monitorMs / 1000;
    for (const w of this.workers) {
      if (w.state !== 'up' && w.state !== 'draining') continue;
      for (const inst of w.instances) {
        const rate = inst.arrivals / secs;
        const serving = inst.state === 'active' || inst.state === 'overloaded' || inst.state === 'interfered';
        if (serving) {
          const c = classifyInstance(inst.classifier, {
            arrivalRate: rate, capacity: inst.capacity, queueLength: inst.queue.length, queueGrowth: inst.queue.length - inst.lastQueue,
            queries: inst.completions + inst.misses, deadlineMisses: inst.misses,
            latency: inst.profiledMs > 0 ? [{ batch: 1, observedMs: inst.observedMs, profiledMs: inst.profiledMs }] : [],
          }, this.thresholds);
          inst.classifier = c.state;
          if (c.state.verdict !== inst.state) { inst.state = c.state.verdict; this.dirty(); }
        }
        inst.lastQueue = inst.queue.length;
        inst.lastRate = rate;
        // The instance's report: the dispatcher's count restarts from its queue as it is now.
        inst.view.outstanding = inst.queuedRows + inst.runningRows.reduce((a, b) => a + b, 0);
        inst.view.reportedAt = now;
        inst.arrivals = 0; inst.completions = 0; inst.misses = 0; inst.observedMs = 0; inst.profiledMs = 0;
      }
      w.loopLoad = (w.loopQueries * this.loopMs) / this.monitorMs;
      w.loopQueries = 0;
      if (w.state === 'up') this.modelAutoscale(w);
    }
    // Capacity at the end of each stats window: the window's last monitor tick records it.
    const k = this.stats.windowOf(now - 1e-6);
    if (this.stats.windowOf(now + this.monitorMs - 1e-6) > k) this.recordCapacity(k);
  }

  private recordCapacity(k: number): void {
    const workersByClass: Record<string, number> = {};
    const instancesByVariant: Record<string, number> = {};
    for (const w of this.workers) {
      if (w.state === 'gone') continue;
      workersByClass[w.cls.name] = (workersByClass[w.cls.name] ?? 0) + 1;
      for (const i of w.instances) {
        const key = `${i.p.variantId}@${w.cls.name}`;
        instancesByVariant[key] = (instancesByVariant[key] ?? 0) + 1;
      }
    }
    this.stats.capacity[k] = { workersByClass, instancesByVariant };
  }

  private modelAutoscale(w: SimWorker): void {
    if (w.instances.length === 0) return;
    const models = [...new Set(w.instances.map((i) => i.p.model))].sort();
    // The variants it could switch to, per class and set of models (cached: the profiles are fixed).
    const key = `${w.cls.name}|${models.join(',')}`;
    let variants = this.scalingVariants.get(key);
    if (!variants) {
      variants = new Map<string, ScalingVariant>();
      for (const p of this.o.profiles) {
        if (p.hardwareClass !== w.cls.name || !models.includes(p.model)) continue;
        variants.set(p.variantId, {
          id: p.variantId, model: p.model, precision: p.precision ?? 'fp32', maxBatch: p.maxBatch, threads: p.threads, accuracy: p.accuracy,
          loadMs: p.loadMs, memoryBytes: p.peakMemoryBytes, capacityQps: capacityQps(latencyCurve(p.latency), p.maxBatch),
        });
      }
      this.scalingVariants.set(key, variants);
    }
    const plan = planWorkerScaling(w.scaling, {
      now: this.now, threads: w.cls.threads, memoryBytes: w.cls.memoryBytes, variants,
      instances: w.instances.map((i) => ({
        id: i.id, variant: i.p.variantId, state: i.state === 'unloaded' ? 'draining' : i.state, arrivalRate: i.lastRate,
        queueLength: i.queue.length, idleMs: this.now - i.lastArrivalAt, threads: i.p.threads, memoryBytes: i.p.peakMemoryBytes,
      })),
    }, this.scalingSettings);
    w.scaling = plan.state;
    for (const a of plan.actions) this.carryOut(w, a);
  }

  private carryOut(w: SimWorker, a: ScalingAction): void {
    this.decisions.push({ atS: this.now / 1000, actor: 'model-autoscaler', worker: w.id, action: a.type === 'switch' ? `switch (${a.reason}) ${a.from} -> ${a.to}` : `${a.type} ${a.variant}`, why: a.why });
    const byId = (id: string) => w.instances.find((i) => i.id === id);
    const profile = (v: string) => this.profileOf.get(`${v}@${w.cls.name}`)!;
    switch (a.type) {
      case 'replicate': this.newInstance(w, profile(a.variant)); break;
      case 'switch': {
        const next = this.newInstance(w, profile(a.to));
        next.onLoaded = () => {
          const old = byId(a.instance);
          if (!old) return;
          // Make before break: queued queries move to the new instance, the old one drains.
          const moved = old.queue.splice(0);
          old.queuedRows = 0;
          for (const q of moved) { next.queue.push(q); next.queuedRows++; }
          this.drain(old);
        };
        break;
      }
      case 'remove': case 'unload': { const i = byId(a.instance); if (i) this.drain(i); break; }
      case 'mitigate': this.mitigations[w.cls.name] = (this.mitigations[w.cls.name] ?? 0) + 1; break;
    }
  }

  // --- VM-autoscaler ----------------------------------------------------------------------------

  private clusterTick(): void {
    const live = this.workers.filter((w) => w.state === 'up');
    const plan = planClusterScaling(this.clusterState, {
      now: this.now,
      workers: live.map((w) => {
        const reserved = w.instances.reduce((a, i) => a + i.p.threads, 0);
        // Cores busy: each instance's busy share of the window times the threads it runs on.
        const cpu = w.instances.reduce((a, i) => a + Math.min(1, i.clusterBusyMs / this.clusterMs) * i.p.threads, 0);
        for (const i of w.instances) i.clusterBusyMs = 0;
        return { id: w.id, hardwareClass: w.cls.name, threads: w.cls.threads, threadsReserved: reserved, cpuCores: cpu, queued: w.instances.reduce((a, i) => a + i.queue.length, 0), managed: w.managed };
      }),
      unplaced: this.unplaced, mitigations: this.mitigations,
      starting: [...new Set(this.workers.filter((w) => w.state === 'starting').map((w) => w.cls.name))],
      classes: this.o.autoscaleClasses,
    }, this.clusterSettings);
    this.clusterState = plan.state;
    this.unplaced = {};
    this.mitigations = {};
    for (const a of plan.actions) {
      if (!this.o.autoscaleClasses.includes(a.hardwareClass)) continue;
      this.decisions.push({ atS: this.now / 1000, actor: 'vm-autoscaler', ...(a.type === 'scale-in' ? { worker: a.worker } : {}), action: `${a.type} ${a.hardwareClass}`, why: a.why });
      if (a.type === 'scale-out') {
        const w = this.newWorker(a.hardwareClass, true);
        this.q.push(this.now + w.cls.startMs, { t: 'worker-up', w });
      } else {
        const w = this.workerById.get(a.worker);
        if (w && w.state === 'up') {
          w.state = 'draining';
          this.dirty();
          for (const i of [...w.instances]) this.drain(i);
          if (w.instances.length === 0) { w.state = 'gone'; w.endedAt = this.now; }
        }
      }
    }
  }

  private newWorker(cls: string, managed: boolean): SimWorker {
    const c = this.byClass.get(cls);
    if (!c) throw new Error(`unknown hardware class "${cls}"`);
    const w: SimWorker = { id: `${cls}-${this.workers.length + 1}`, cls: c, state: 'starting', managed, requestedAt: this.now, instances: [], scaling: initialScalingState, loopFreeAt: 0, loopQueries: 0, loopLoad: 0 };
    this.workers.push(w);
    this.workerById.set(w.id, w);
    return w;
  }

  private workerUp(w: SimWorker): void {
    w.state = 'up';
    this.dirty();
  }
}
