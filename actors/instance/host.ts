// Hosts one variant instance: its lifecycle actor, its query queue, the batching loop and the
// per-window counters the monitor reads. The ONNX Runtime session runs in its own thread, so
// replicas run in parallel and the worker's event loop stays free for NATS.
import { createActor, fromPromise, waitFor, type Actor, type SnapshotFrom } from 'xstate';
import type { InstanceState } from '../../schemas/worker.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import type { Logger } from '../../runtime/log.js';
import { BATCH_OVERHEAD_MS, admit, aimdInitial, aimdUpdate, capacityQps, decideBatch, drainMs, latencyCurve, type AimdState } from './batching.js';
import { concatBatch, splitOutputs, zeroInputs } from './inputs.js';
import { pickBatch } from './batch-key.js';
import { latencyModel, roundElements } from './latency.js';
import {
  SESSION_START_MS, defaultInstanceOptions,
  type InstanceOptions, type InstanceSession, type InstanceSpec, type InstanceWindow, type Outcome, type QueuedQuery,
} from './spec.js';
import { instanceMachine, type InstanceInput } from './machine.js';

export interface InstanceDeps {
  spec: InstanceSpec;
  worker: { id: string; hardwareClass: string; pricePerHour: number; threads: number };
  open: () => Promise<InstanceSession>;
  log: Logger;
  /** Called on every lifecycle state change. */
  onState: (instance: VariantInstance) => void;
  options?: Partial<InstanceOptions>;
}

export class VariantInstance {
  readonly spec: InstanceSpec;
  readonly createdAt = Date.now();
  readonly latencyMs: (batch: number) => number;
  /** Latency by rows for queries of an input size (latency.ts); latencyMs's curve when the profile has no sizes. */
  private readonly latencyAt: (elements?: number) => (batch: number) => number;
  /** Largest input size queued or running since the instance was last idle: the work ahead is costed at it. */
  private aheadElements?: number;
  /**
   * Rows per second one replica serves at full batches, with the per-batch overhead measured here
   * (0 without a profile), at the input size of the traffic it served in the last window (the
   * profile's largest size before any arrived, or without sizes).
   */
  get capacityQps(): number {
    return this.spec.profile ? capacityQps(this.latencyAt(this.servedElements), this.spec.maxBatch, this.overheadMs) : 0;
  }
  /**
   * Mean input elements per sample of the rows that arrived in the last window with arrivals,
   * when the profile has sizes (undefined otherwise): the size capacity is judged at.
   */
  servedElements?: number;
  loadStartedAt = Date.now();
  loadMs?: number;
  lastArrivalAt = Date.now();
  /** Batches and rows run since the instance loaded (tests check that refused work was never computed). */
  batchesRun = 0;
  rowsRun = 0;
  private readonly queue: QueuedQuery[] = [];
  private queuedRows = 0;
  /**
   * Measured cost of a batch beyond its inference, smoothed: what the session spends on a run
   * besides session.run (tensors in and out). Not the round trip to a session thread: under
   * overload that is mostly the event loop's queueing, and counting it per batch made admission
   * refuse every query while the instance sat idle (measured: 2,813 of 2,819 refused, queue 0).
   */
  private overheadMs = BATCH_OVERHEAD_MS;
  /**
   * Observed over profiled run time, smoothed (1 = as profiled). Admission and expiry scale the
   * profile by it: an instance slowed by contention that promised the profile answered late.
   */
  private slowdown = 1;
  private readonly actor: Actor<typeof instanceMachine>;
  private readonly options: InstanceOptions;
  private session?: InstanceSession;
  private running = 0;
  /** Rows of each batch running now (at most two: one in the session, one pipelined). */
  private runningRows: number[] = [];
  private timer?: NodeJS.Timeout;
  private accepted = 0;
  private timerAt = 0;
  private shedAt = 0;
  /** Observed cost per batch beyond its session time while backlogged (smoothed); see noteThroughput. */
  private loopMsPerBatch = 0;
  private lastDoneAt = 0;
  private backlogged = false;
  private window: InstanceWindow = VariantInstance.emptyWindow();
  private windowStart = Date.now();
  private lastWindowRate = 0;
  private lastPinnedShare = 0;
  /** With batching 'aimd': the adaptive batch cap (batching.ts, aimdUpdate); absent: batches up to the max batch. */
  private aimd?: AimdState;
  private readonly done: Promise<void>;
  /** Settles with the first state after loading: a serving state, or 'failed'. */
  readonly loaded: Promise<InstanceState>;

  constructor(private readonly deps: InstanceDeps) {
    this.spec = deps.spec;
    this.options = { ...defaultInstanceOptions, ...deps.options };
    this.latencyMs = latencyCurve(deps.spec.profile?.latency ?? []);
    this.latencyAt = latencyModel(deps.spec.profile);
    if (this.options.batching === 'aimd') this.aimd = aimdInitial(deps.spec.maxBatch);
    const log = deps.log.child({ instance: deps.spec.id, variant: deps.spec.variant });
    this.actor = createActor(instanceMachine.provide({
      actors: {
        loadSession: fromPromise<void, InstanceInput>(async ({ signal }) => {
          this.loadStartedAt = Date.now();
          // A load that hangs (a stuck fetch, a thread that never answers) fails instead of holding queries forever.
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new InfaasError(ErrorCode.ModelLoadFailed, `loading took longer than ${this.options.loadTimeoutMs} ms`)), this.options.loadTimeoutMs);
          });
          const opening = deps.open();
          try {
            const s = await Promise.race([opening, timeout]);
            s.onExit((err) => {
              if (this.session === s) this.actor.send({ type: 'instance.crashed', error: err?.message ?? 'session thread exited' });
            });
            // First runs of a fresh session are several times slower (allocations, cold caches):
            // pay for them before serving, not on the first queries, nor in the monitor's first window.
            for (const rows of [1, 1, deps.spec.maxBatch, deps.spec.maxBatch]) {
              if (signal.aborted) break;
              await Promise.race([s.run(zeroInputs(deps.spec.inputs, rows)), timeout]);
            }
            // Drained (or stopped) while loading: close what was opened instead of leaking it.
            if (signal.aborted) { await s.close(); return; }
            this.session = s;
            this.loadMs = Date.now() - this.loadStartedAt;
          } catch (err) {
            void opening.then((s) => s.close(), () => {});
            throw err;
          } finally {
            clearTimeout(timer);
          }
        }),
        releaseSession: fromPromiseActor(async () => {
          const s = this.session;
          this.session = undefined;
          await s?.close();
        }),
      },
      actions: { publishState: () => queueMicrotask(() => this.stateChanged()) },
    }), { input: { instanceId: deps.spec.id, variantId: deps.spec.variant } });
    this.done = new Promise((resolve) => {
      this.actor.subscribe({
        complete: () => resolve(),
        error: (err) => { log.error({ err }, 'instance actor failed'); resolve(); },
      });
    });
    this.actor.start();
    this.loaded = waitFor(this.actor, (s) => stateName(s) !== 'loading', { timeout: Infinity })
      .then((s) => stateName(s), () => 'failed' as const);
  }

  private static emptyWindow(): InstanceWindow {
    return { ms: 0, arrivals: 0, pinnedArrivals: 0, arrivedElements: 0, completions: 0, refusals: 0, deadlineMisses: 0, batches: 0, rows: 0, latency: new Map(), predicted: new Map(), queueLength: 0 };
  }

  get state(): InstanceState {
    return stateName(this.actor.getSnapshot());
  }

  get reason(): string | undefined {
    const c = this.actor.getSnapshot().context;
    return c.error ?? c.reason;
  }

  /** Accepts new queries (loading or serving, not draining or gone). */
  get accepting(): boolean {
    const s = this.state;
    return s === 'loading' || s === 'active' || s === 'overloaded' || s === 'interfered';
  }

  get serving(): boolean {
    return this.session !== undefined && this.accepting;
  }

  /** Arrivals per second in the last complete monitoring window. */
  get recentArrivalRate(): number {
    return this.lastWindowRate;
  }

  /** The share of those arrivals (rows) from queries that named this variant. */
  get recentPinnedShare(): number {
    return this.lastPinnedShare;
  }

  /** Rows a batch may take now: the AIMD cap, or the variant's max batch. */
  get batchCap(): number {
    return this.aimd?.cap ?? this.spec.maxBatch;
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** Queries accepted and not yet answered (queued ones included); a drain waits for zero. */
  get inFlight(): number {
    return this.accepted;
  }

  /** Milliseconds until a loading instance is expected to serve (0 once loaded). */
  readyInMs(now = Date.now()): number {
    if (this.state !== 'loading') return 0;
    const expected = (this.spec.profile?.loadMs ?? 0) + SESSION_START_MS;
    return Math.max(0, this.loadStartedAt + expected - now);
  }

  /** Queues a checked query; the answer arrives through `q.answer`, exactly once. */
  enqueue(q: QueuedQuery): void {
    if (!this.accepting) {
      q.answer({ error: new InfaasError(ErrorCode.VariantNotLoaded, `instance ${this.spec.id} of ${this.spec.variant} is ${this.state}`) });
      return;
    }
    // Rows, not queries: capacity is rows per second (a query of n rows is n items of a batch).
    this.window.arrivals += q.checked.rows;
    if (q.pinned) this.window.pinnedArrivals += q.checked.rows;
    this.window.arrivedElements += q.checked.rows * q.checked.elements;
    this.lastArrivalAt = q.receivedAt;
    // Admission: a query that cannot finish in time behind the work already queued is answered
    // now, not held until it expires (under overload that held work crowds out what could be served).
    if (this.session) {
      const { ok, needMs: need } = admit(q.receivedAt, q.deadline, this.expectedWaitMs(), q.checked.rows, this.latencyAt(this.elementsOf(q)), this.slowdown, this.overheadMs);
      if (!ok) {
        // Not now rather than never: retryable, once the queue ahead has shrunk by the shortfall.
        this.window.deadlineMisses++;
        this.window.refusals++;
        const retryAfterMs = Math.ceil(q.receivedAt + need - q.deadline);
        q.answer({ error: new InfaasError(ErrorCode.NoCapacity, `${(q.deadline - q.receivedAt).toFixed(0)} ms left, ~${need.toFixed(1)} ms needed with ${this.queuedRows} rows queued ahead on ${this.spec.variant}; not computed`, { deadline: q.deadline, now: q.receivedAt, queuedRows: this.queuedRows, retryAfterMs }) });
        return;
      }
    }
    this.accepted++;
    this.push(q);
    this.pump();
  }

  /**
   * Hands queued (not yet running) queries to a replacement instance of the same model: a switch
   * should not leave them to age in the queue of the instance it is retiring. Queries with more
   * rows than the replacement batches stay here.
   */
  handOver(to: VariantInstance): number {
    const keep: QueuedQuery[] = [];
    let moved = 0;
    this.queuedRows = 0;
    for (const q of this.queue.splice(0)) {
      if (q.checked.rows > to.spec.maxBatch || !to.accepting) { keep.push(q); this.queuedRows += q.checked.rows; continue; }
      moved++;
      this.settled();
      to.adopt(q);
    }
    this.queue.push(...keep);
    return moved;
  }

  /** Takes a query handed over by another instance (not counted as a new arrival). */
  private adopt(q: QueuedQuery): void {
    this.accepted++;
    this.push(q);
    this.pump();
  }

  private push(q: QueuedQuery): void {
    const e = this.elementsOf(q);
    if (e !== undefined) this.aheadElements = this.queuedRows === 0 && this.running === 0 ? e : Math.max(this.aheadElements ?? e, e);
    this.queue.push(q);
    this.queuedRows += q.checked.rows;
  }

  /** Time until a query queued now would start: the queue in full batches, plus any running batch. */
  private expectedWaitMs(): number {
    return this.queuedRows === 0 && this.running === 0 ? 0 : this.drainMs(this.queuedRows);
  }

  /** Finish queued work, refuse new, release the session; resolves once unloaded (or failed). */
  drain(): Promise<void> {
    if (this.actor.getSnapshot().status === 'active') this.actor.send({ type: 'drain.requested', idle: this.accepted === 0 });
    return this.done;
  }

  /** One accepted query answered (or handed over); a draining instance that is now empty unloads. */
  private settled(): void {
    this.accepted = Math.max(0, this.accepted - 1);
    if (this.accepted === 0 && this.actor.getSnapshot().status === 'active' && this.state === 'draining') this.actor.send({ type: 'queries.drained' });
  }

  /** Applies a monitor verdict (the machine ignores repeats and verdicts outside serving). */
  verdict(verdict: 'active' | 'overloaded' | 'interfered', reason: string): void {
    this.actor.send({ type: 'monitor.verdict', verdict, reason });
  }

  /** The counters since the last call, and a fresh window. */
  takeWindow(now = Date.now()): InstanceWindow {
    const w = this.window;
    w.ms = Math.max(1, now - this.windowStart);
    w.queueLength = this.queue.length;
    this.window = VariantInstance.emptyWindow();
    this.windowStart = now;
    this.lastWindowRate = (w.arrivals * 1000) / w.ms;
    this.lastPinnedShare = w.arrivals > 0 ? w.pinnedArrivals / w.arrivals : 0;
    // Rounded to 1/64 of a power of two, so the latency model's memo of curves by size stays small.
    if (w.arrivals > 0 && this.spec.profile?.sizes?.length) this.servedElements = roundElements(w.arrivedElements / w.arrivals);
    return w;
  }

  private stateChanged(): void {
    const s = this.state;
    if (s === 'failed') this.failQueued(new InfaasError(ErrorCode.InferenceFailed, `instance ${this.spec.id} failed: ${this.reason ?? 'unknown error'}`));
    // Unloaded before it ever served (drained while loading): whatever waited for it is answered.
    if (s === 'unloaded') this.failQueued(new InfaasError(ErrorCode.VariantNotLoaded, `instance ${this.spec.id} of ${this.spec.variant} was unloaded before it served`, { retryAfterMs: 0 }));
    if (this.serving || s === 'draining') this.pump();
    this.deps.onState(this);
  }

  private failQueued(err: InfaasError): void {
    this.queuedRows = 0;
    for (const q of this.queue.splice(0)) this.finish(q, { error: err });
  }

  private finish(q: QueuedQuery, outcome: Outcome): void {
    this.window.completions++;
    q.answer(outcome);
    this.settled();
  }

  /** Drops expired queries, then runs a batch now or lets it fill behind the one in flight. */
  private pump(): void {
    if (this.queue.length === 0) return;
    const now = Date.now();
    const single = this.latencyMs(1);
    // The most urgent query: the one whose own single-row run (at its input size) must start first.
    let urgent: QueuedQuery | undefined;
    let startBy = Infinity;
    let expired = false;
    for (const q of this.queue) {
      const ms = this.singleMs(q, single);
      if (now + ms > q.deadline) expired = true;
      else if (q.deadline - ms < startBy) { startBy = q.deadline - ms; urgent = q; }
    }
    if (expired) this.expire(now, single);
    // The queue is judged again as the observed speed changes: a query admitted when the
    // instance ran faster, which its place in the queue can no longer finish in time, is answered
    // now rather than at its deadline (under overload, within milliseconds, not after the deadline).
    if (this.session && now - this.shedAt >= SHED_EVERY_MS) { this.shedAt = now; this.shed(now); }
    if (this.queue.length === 0) return;
    // Loading, or both pipeline slots taken: nothing runs now, but the earliest query is answered
    // at its deadline rather than whenever the session frees up.
    if (!this.session || this.running >= 2) { this.armTimer(now, Math.max(0, startBy - now)); return; }
    const decision = decideBatch({
      now, queued: this.queue.length, earliestDeadline: urgent?.deadline ?? Infinity, rows: this.queuedRows, maxBatch: this.batchCap,
      latencyMs: this.latencyAt(urgent && this.elementsOf(urgent)), overheadMs: this.overheadMs, running: this.running,
    });
    // A draining instance gets no more arrivals: waiting for a fuller batch would only add delay.
    if (decision.action === 'wait' && this.state !== 'draining') {
      // The running batch's completion pumps again; the timer answers the earliest query if it expires first.
      this.armTimer(now, decision.ms);
      return;
    }
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    void this.runBatch();
  }

  /** Pumps again in `ms`; a more urgent arrival re-arms an existing timer earlier, never later. */
  private armTimer(now: number, ms: number): void {
    if (this.timer && this.timerAt <= now + ms) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = now + ms;
    this.timer = setTimeout(() => { this.timer = undefined; this.pump(); }, ms);
  }

  /**
   * Answers queued queries whose place in the queue finishes after their deadline (full batches
   * ahead at the observed speed, as admission predicts), without computing them.
   */
  private shed(now: number): void {
    let rows = 0;
    let late = false;
    for (const q of this.queue) {
      rows += q.checked.rows;
      if (now + this.drainMs(rows) > q.deadline) { late = true; break; }
    }
    if (!late) return;
    const keep: QueuedQuery[] = [];
    rows = 0;
    for (const q of this.queue) {
      const finish = now + this.drainMs(rows + q.checked.rows);
      if (finish <= q.deadline) { keep.push(q); rows += q.checked.rows; continue; }
      this.queuedRows -= q.checked.rows;
      this.window.deadlineMisses++;
      this.finish(q, {
        error: new InfaasError(ErrorCode.DeadlineExceeded, `would finish ~${(finish - q.deadline).toFixed(0)} ms after its deadline behind ${rows} queued rows on ${this.spec.variant} (running ${this.slowdown.toFixed(2)}x its profile); answered now, not computed`, { deadline: q.deadline, now }),
      });
    }
    this.queue.splice(0, this.queue.length, ...keep);
  }

  /** Answers queued queries that can no longer finish in time, without computing them. */
  private expire(now: number, single: number): void {
    const keep: QueuedQuery[] = [];
    for (const q of this.queue) {
      const ms = this.singleMs(q, single);
      if (now + ms <= q.deadline) { keep.push(q); continue; }
      this.queuedRows -= q.checked.rows;
      this.window.deadlineMisses++;
      this.finish(q, { error: deadlineError(q, now, ms) });
    }
    this.queue.splice(0, this.queue.length, ...keep);
  }

  /**
   * Takes the oldest query and the later ones that may share its run (same sizes besides the batch
   * axes, equal axis-less inputs: batch-key.ts) while their rows fit the batch cap (the variant's
   * maximum batch, or the AIMD cap). A first query with more rows than the AIMD cap runs alone
   * rather than never. A model whose outputs cannot be split per query runs one query per run.
   */
  private takeBatch(): QueuedQuery[] {
    const { batch, rest } = pickBatch(this.queue, {
      cap: this.batchCap, maxBatch: this.spec.maxBatch, adaptive: this.aimd !== undefined, shareRuns: this.spec.batchQueries !== false,
    });
    if (batch.length === 0) return batch;
    this.queue.splice(0, this.queue.length, ...rest);
    for (const q of batch) this.queuedRows -= q.checked.rows;
    return batch;
  }

  private async runBatch(): Promise<void> {
    const session = this.session!;
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.running++;
    const batchRows = batch.reduce((a, q) => a + q.checked.rows, 0);
    this.runningRows.push(batchRows);
    const started = Date.now();
    const t0 = performance.now();
    const alone = this.running === 1;
    let sessionMs: number | undefined;
    try {
      const { rows, feeds } = concatBatch(batch.map((q) => q.checked));
      const { outputs, ms, busyMs } = await session.run(feeds);
      sessionMs = ms;
      // A session that does not report its own busy time: a lone batch's round trip stands in.
      const busy = busyMs ?? (alone ? performance.now() - t0 : ms);
      this.overheadMs = 0.9 * this.overheadMs + 0.1 * Math.max(0, busy - ms);
      // The batch's queries share their sizes (batch-key.ts): the first one's is the batch's.
      const profiled = this.latencyAt(this.elementsOf(batch[0]))(batch.reduce((a, q) => a + q.checked.rows, 0));
      if (profiled > 0) this.slowdown = Math.max(1, 0.9 * this.slowdown + 0.1 * (ms / profiled));
      const parts = splitOutputs(outputs, rows, this.spec.outputs);
      const total = rows.reduce((a, b) => a + b, 0);
      this.record(total, ms, profiled);
      // The batch's tightest objective: the least time any of its queries had left when it reached this worker.
      if (this.aimd) this.aimd = aimdUpdate(this.aimd, { rows: total, ms, objectiveMs: Math.min(...batch.map((q) => q.deadline - q.receivedAt)) }, this.options.aimd);
      const end = Date.now();
      // Cost: the worker's price for the batch's time, for the share of cores the instance holds,
      // split over the batch's rows.
      const perRow = (this.deps.worker.pricePerHour / 3_600_000) * ms * Math.min(1, this.spec.threads / this.deps.worker.threads) / total;
      batch.forEach((q, i) => this.finish(q, {
        result: {
          ...(q.id !== undefined ? { id: q.id } : {}),
          outputs: parts[i], model: this.spec.model, variant: this.spec.variant,
          worker: this.deps.worker.id, hardwareClass: this.deps.worker.hardwareClass,
          timings: { queueMs: started - q.receivedAt, inferenceMs: ms, totalMs: end - q.startedAt },
          cost: perRow * q.checked.rows, ...(q.note ? { note: q.note } : {}),
        },
      }));
    } catch (err) {
      const e = err instanceof InfaasError ? err : new InfaasError(ErrorCode.InferenceFailed, `inference failed: ${(err as Error).message}`);
      for (const q of batch) this.finish(q, { error: e });
    } finally {
      this.running--;
      this.runningRows.splice(this.runningRows.indexOf(batchRows), 1);
      this.noteThroughput(sessionMs);
      this.pump();
    }
  }

  /**
   * While backlogged (work was queued when the previous batch finished, so this one started at
   * once), the time between batch completions beyond the batch's own session time is what each
   * batch really costs on top of the run: thread hops and this event loop's other work (decoding,
   * admitting, answering), which the session's own overhead does not see. Per batch, not per row:
   * a batch of 32 rows costs little more than a batch of 1.
   */
  private noteThroughput(sessionMs: number | undefined): void {
    const now = performance.now();
    if (this.backlogged && sessionMs !== undefined) {
      // One stall (a GC pause, a busy moment of the host) may at most double the estimate: a real
      // rise still shows within a few batches, a spike cannot make admission refuse everything.
      const sample = Math.min(Math.max(0, now - this.lastDoneAt - sessionMs), 2 * this.loopMsPerBatch + 1);
      this.loopMsPerBatch = 0.8 * this.loopMsPerBatch + 0.2 * sample;
    } else {
      // Not backlogged: no sign of extra cost. Decaying here also undoes an estimate so high that
      // admission kept the queue empty (then no backlogged batch would ever correct it).
      this.loopMsPerBatch *= 0.95;
    }
    this.lastDoneAt = now;
    this.backlogged = this.queue.length > 0;
  }

  /** A query's input elements per sample, when the profile has sizes to predict from. */
  private elementsOf(q: QueuedQuery): number | undefined {
    return this.spec.profile?.sizes?.length ? q.checked.elements : undefined;
  }

  /** Profiled time of the query's own run alone, at its input size (`single`: the profile's, for a query without one). */
  private singleMs(q: QueuedQuery, single: number): number {
    const e = this.elementsOf(q);
    return e === undefined ? single : this.latencyAt(e)(1);
  }

  /**
   * Time for what is running plus `rows` queued rows to finish (batching.ts, drainMs), each batch
   * at the largest input size queued or run since the instance was last idle (exact for queries of
   * one size; a mix is costed at its largest size, though its sizes run in separate batches).
   */
  private drainMs(rows: number): number {
    return drainMs({
      runningRows: this.runningRows, queuedRows: rows, maxBatch: this.batchCap, latencyMs: this.latencyAt(this.aheadElements),
      slowdown: this.slowdown, extraMs: Math.max(this.overheadMs, this.loopMsPerBatch),
    });
  }

  private record(rows: number, ms: number, predictedMs: number): void {
    this.batchesRun++;
    this.rowsRun += rows;
    this.window.batches++;
    this.window.rows += rows;
    const list = this.window.latency.get(rows);
    if (list) list.push(ms);
    else this.window.latency.set(rows, [ms]);
    const predicted = this.window.predicted.get(rows);
    if (predicted) predicted.push(predictedMs);
    else this.window.predicted.set(rows, [predictedMs]);
  }
}

/** How often the queue is judged again against the observed speed (it costs a pass over the queue). */
const SHED_EVERY_MS = 5;

function deadlineError(q: QueuedQuery, now: number, needMs: number): InfaasError {
  const left = q.deadline - now;
  return new InfaasError(
    ErrorCode.DeadlineExceeded,
    left <= 0 ? `deadline passed ${(-left).toFixed(0)} ms ago; not computed` : `${left.toFixed(1)} ms left, inference needs ~${needMs.toFixed(2)} ms; not computed`,
    { deadline: q.deadline, now },
  );
}

/** The flat state name of an instance snapshot ('serving.active' reads as 'active'). */
export function stateName(snapshot: SnapshotFrom<typeof instanceMachine>): InstanceState {
  const v = snapshot.value;
  if (typeof v === 'string') return (v === 'unloading' ? 'draining' : v) as InstanceState;
  return (v as { serving: InstanceState }).serving;
}

function fromPromiseActor(fn: () => Promise<void>) {
  return fromPromise<void, InstanceInput>(fn);
}
