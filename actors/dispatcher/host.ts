// Hosts a dispatcher: the infaas.query endpoint (queue group: any number of controllers share the
// load). A query is decoded and validated once, the pure selectVariant policy picks a variant and a
// worker from in-memory views fed by KV watches (no KV read on the query path), and the query is
// forwarded with the client's reply subject, so the worker answers the client directly.
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type ServiceMsg } from 'nats';
import { createActor, fromPromise, waitFor } from 'xstate';
import { Query } from '../../schemas/query.js';
import { validate } from '../../schemas/validate.js';
import type { InferRequest } from '../../schemas/worker.js';
import type { AcceptedQuery } from '../worker/inference.js';
import { buckets, headerNames, queueGroups, services, subjects } from '../../subjects/index.js';
import { isAnswerSubject } from '../../subjects/access.js';
import { ClusterView } from '../../runtime/views/cluster-view.js';
import { CONTENT_TYPE, JSON_TYPE, MSGPACK_TYPE, decodePayload, encodeErrorReply, encodeJson, headerEpochMs, headersOf, isJson } from '../../runtime/bus/codec.js';
import { ErrorCode, InfaasError, toInfaasError, headerSafe } from '../../schemas/errors.js';
import type { Logger } from '../../runtime/log.js';
import { RegistryView } from '../../runtime/views/registry-view.js';
import type { Stores } from '../../runtime/bus/store.js';
import { EndpointErrors, addService } from '../../runtime/bus/service.js';
import { FORWARD_HEADROOM_BYTES, fetchEstimateMs, maxPayloadOf, referencedBytes } from '../../runtime/bus/blobs.js';
import { dispatcherMachine } from './machine.js';
import { BUSY_CHECK_MS, DEAR_CHECK_MS, selectVariant, unplacedClasses, warmUpCheaper, warmUpWhenBusy, type Selection, type SelectionRequest, type Snapshot } from './select-variant.js';
import { SnapshotBuilder } from './snapshot.js';
import { sampleElements } from '../instance/latency.js';
import { queryRows, servingSpecs } from '../../runtime/onnx/batch-axes.js';
import type { TensorSpec } from '../../schemas/tensor.js';

export interface DispatcherOptions {
  /**
   * Serving-path time a query pays on top of its profiled inference (client -> NATS -> dispatcher
   * -> worker -> session thread and back): ~1.4-1.8 ms measured on the 2-core dev VM
   * (docs/benchmarks.md), so 2 ms is subtracted from the SLO before matching profiles.
   */
  pathOverheadMs: number;
  /**
   * The part of that path still ahead once a query has reached the dispatcher (dispatcher ->
   * worker -> client), when judging against a deadline that was set before the first hop (the
   * client's Infaas-Deadline): the hop already travelled is inside that deadline. About half.
   */
  pathAheadMs: number;
  /** Publish one selection in this many on infaas.events.dispatcher (0: none). */
  auditEvery: number;
  /** Queries bigger than this are refused; default no limit of our own (the server's max payload, less FORWARD_HEADROOM_BYTES). */
  maxRequestBytes: number;
}

/** A query as received: what re-sending it to another worker needs. */
interface Incoming {
  q: Query;
  batch: number;
  /** The client's bytes, forwarded untouched. */
  data: Uint8Array;
  json: boolean;
  reply?: string;
  resultSubject?: string;
  deadline: number;
  startedAt: number;
  receivedAt: number;
}

/** A query forwarded to a worker in another process and not yet acked. */
interface InFlight { c: Incoming; workerId: string; sentAt: number; dueAt: number; expectedMs: number; tries: number; overdue?: boolean }

/** A query is sent to at most this many more workers after the first one died holding it. */
const MAX_RESENDS = 2;
/** Past its expected time plus this, a query's worker is probed (at most once per PROBE_EVERY_MS). */
const PROBE_AFTER_MS = 250;
const PROBE_EVERY_MS = 250;
const PROBE_TIMEOUT_MS = 1000;
/** A query unanswered this long past its deadline is answered WORKER_LOST by the dispatcher (QueryClient gives up at 1 s). */
const ANSWER_GRACE_MS = 500;
const SWEEP_MS = 50;

/** How long a warm-up load is not repeated for the same variant and worker. */
const WARM_UP_MS = 5000;

/** selectVariant's reason when feasible variants exist but no worker has room for one in time. */
const ROOM = 'no worker can run a feasible variant in time';

export const defaultDispatcherOptions: DispatcherOptions = Object.freeze({ pathOverheadMs: 2, pathAheadMs: 1, auditEvery: 100, maxRequestBytes: Infinity });

/** The selection policy; swap it for a baseline or an experiment. */
export type SelectionPolicy = (snapshot: Snapshot, request: SelectionRequest) => Selection;

export interface DispatcherConfig {
  nc: NatsConnection;
  stores: Stores;
  log: Logger;
  controllerId: string;
  options?: Partial<DispatcherOptions>;
  policy?: SelectionPolicy;
}

/** A worker in this process: queries for it are handed over in memory instead of through NATS. */
export type LocalWorker = (query: AcceptedQuery) => void;

export interface Dispatcher {
  /** Queries forwarded and refused since start; re-sent after a worker died holding them; answered WORKER_LOST after its silence. */
  readonly stats: { forwarded: number; refused: number; resent: number; lost: number };
  /** Hands queries for `workerId` to a worker in this process (infaas up runs both in one). */
  attachLocal(workerId: string, worker: LocalWorker): void;
  stop(): Promise<void>;
}

export async function startDispatcher(config: DispatcherConfig): Promise<Dispatcher> {
  const { nc, stores } = config;
  const options: DispatcherOptions = Object.freeze({ ...defaultDispatcherOptions, ...config.options });
  const policy = config.policy ?? selectVariant;
  const log = config.log.child({ actor: 'dispatcher', controller: config.controllerId });
  const registry = new RegistryView(log);
  const cluster = new ClusterView(log);
  const builder = new SnapshotBuilder(registry, cluster);
  const stats = { forwarded: 0, refused: 0, resent: 0, lost: 0 };
  const locals = new Map<string, LocalWorker>();
  let decisions = 0;
  // Every error this dispatcher answers counts on its query endpoint (`nats micro stats`); a
  // worker's errors count on the worker's infer endpoint.
  const errors = new EndpointErrors();

  /** Answers a query with an error; one published to its result subject carries the query's id. */
  const refuse = (to: Pick<Incoming, 'json' | 'reply' | 'resultSubject'> & { q?: Pick<Query, 'id'> }, err: InfaasError): void => {
    stats.refused++;
    const { data, headers: h } = encodeErrorReply(err, to.json, to.resultSubject ? to.q?.id : undefined);
    const subject = to.resultSubject ?? to.reply;
    if (!subject) return;
    nc.publish(subject, data, { headers: h });
    errors.count('query', err);
  };

  // Tasks of registered models, rebuilt only when the registry changes (not per query).
  let tasks: Set<string> | undefined;
  registry.onChange(() => { tasks = undefined; });
  const registeredTasks = (): Set<string> => {
    if (!tasks) {
      tasks = new Set();
      for (const m of registry.models.values()) if (m.status === 'registered') tasks.add(m.task);
    }
    return tasks;
  };

  // Input specs (batch axes as the instance serves them) per model and per task (its first
  // registered model's: a task's models take the same inputs), rebuilt when the registry changes.
  let inputSpecs = new Map<string, readonly TensorSpec[]>();
  registry.onChange(() => { inputSpecs = new Map(); });
  /** The model's input specs as its instances serve them (batch axes): rows and elements are counted by them. */
  const specsOf = (q: Query): readonly TensorSpec[] => {
    const model = q.model ?? (q.variant !== undefined ? registry.variants.get(q.variant)?.model : undefined);
    const key = model !== undefined ? `m:${model}` : `t:${q.task}`;
    let specs = inputSpecs.get(key);
    if (!specs) {
      let m = model !== undefined ? registry.models.get(model) : undefined;
      if (model === undefined) for (const x of registry.models.values()) if (x.status === 'registered' && x.task === q.task) { m = x; break; }
      inputSpecs.set(key, specs = m ? servingSpecs(m).inputs : []);
    }
    return specs;
  };
  /**
   * Expected time for a worker to fetch the query's inputs by reference from the blobs bucket (0
   * when all are inline): the live workers' measured speed (their median), else a default.
   */
  const fetchMsOf = (q: Query): number => {
    const bytes = referencedBytes(q.inputs);
    if (bytes === 0) return 0;
    const rates = cluster.liveWorkers().map((w) => w.usage.blobFetchMsPerMiB).filter((r): r is number => r !== undefined).sort((a, b) => a - b);
    return fetchEstimateMs(bytes, rates.length > 0 ? rates[Math.floor(rates.length / 2)] : undefined);
  };
  /** The query's input elements per sample, from its shapes only: selection predicts latency at its size. */
  const elementsOf = (q: Query): number => sampleElements(q.inputs, specsOf(q));

  const known = (q: Query): void => {
    const named = (q.task !== undefined ? 1 : 0) + (q.model !== undefined ? 1 : 0) + (q.variant !== undefined ? 1 : 0);
    if (named !== 1) throw new InfaasError(ErrorCode.BadRequest, 'a query names exactly one of task, model or variant');
    if (q.task !== undefined && !registeredTasks().has(q.task)) {
      const all = [...registeredTasks()].sort();
      throw new InfaasError(ErrorCode.UnknownTask, `no registered model does task "${q.task}" (tasks: ${all.join(', ') || 'none'})`, { tasks: all });
    }
    if (q.model !== undefined && registry.models.get(q.model)?.status !== 'registered') {
      throw new InfaasError(ErrorCode.ModelNotFound, `model ${q.model} is not registered`);
    }
    if (q.variant !== undefined && !registry.variants.has(q.variant)) {
      throw new InfaasError(ErrorCode.VariantNotFound, `variant ${q.variant} is not in the registry`);
    }
  };

  /** Decodes and validates a query; the decision and the forwarding are `dispatch`'s. */
  const handler = (err: Error | null, msg: ServiceMsg): void => {
    if (err) { log.error({ err }, 'query endpoint stopped'); return; }
    // Answers go out with the dispatcher's and the workers' permissions, so a reply subject naming a
    // system or control subject ($KV..., infaas.worker...) is never answered (subjects/access.ts).
    if (msg.reply && !isAnswerSubject(msg.reply)) { log.debug({ reply: msg.reply }, 'query dropped: its reply subject is not an inbox'); return; }
    const receivedAt = Date.now();
    let json = false;
    let resultSubject: string | undefined;
    let query: Query | undefined;
    try {
      const h = headersOf(msg);
      json = isJson(h);
      // Forwarded untouched plus routing headers: a query must leave them room under the max payload.
      const limit = Math.min(options.maxRequestBytes, maxPayloadOf(nc) - FORWARD_HEADROOM_BYTES);
      if (msg.data.length > limit) {
        throw new InfaasError(ErrorCode.PayloadTooLarge, `query is ${msg.data.length} bytes; at most ${limit} (the bus's max payload less room for routing headers): send big tensors by reference through the Object Store bucket ${buckets.blobs}, as QueryClient does (docs/query.md, "Big tensors")`, { bytes: msg.data.length, limit });
      }
      const q = validate(Query, decodePayload(msg.data, h), 'query');
      resultSubject = q.resultSubject;
      query = q;
      known(q);
      // Rows on the model's batch axes (a recurrent state [2, batch, 128] counts dim 1; a model
      // served unbatched counts one); the instance checks the tensors themselves.
      const batch = Object.keys(q.inputs).length === 0 ? 0 : queryRows(q.inputs, specsOf(q));
      if (!Number.isInteger(batch) || batch < 1) throw new InfaasError(ErrorCode.InvalidInput, 'a query needs at least one input with at least one row on its batch axis');
      // A client may pass an absolute deadline of its own (propagated from upstream): the earlier wins.
      const deadline = Math.min(receivedAt + q.slo.latencyMs, headerEpochMs(h, headerNames.deadline) ?? Infinity);
      const startedAt = headerEpochMs(h, headerNames.start) ?? receivedAt;
      dispatch({ q, batch, data: msg.data, json, ...(msg.reply ? { reply: msg.reply } : {}), ...(resultSubject ? { resultSubject } : {}), deadline, startedAt, receivedAt }, receivedAt, 0);
    } catch (e) {
      const ie = toInfaasError(e);
      if (ie.code === ErrorCode.Internal) log.error({ err: e }, 'query failed');
      refuse({ json, ...(msg.reply ? { reply: msg.reply } : {}), ...(resultSubject ? { resultSubject } : {}), ...(query ? { q: query } : {}) }, ie);
    }
  };

  /**
   * Selects a variant and a worker for a query at `now` (its arrival, or later when a worker it was
   * sent to died) and hands it over; throws the InfaasError that answers it otherwise.
   */
  const dispatch = (c: Incoming, now: number, tries: number): void => {
    const { q, deadline } = c;
    // Selection judges against the effective deadline, not only the objective (a deadline already
    // past is DEADLINE_EXCEEDED below, unless the objective itself is infeasible: that says more).
    const budgetMs = Math.round((deadline - now) * 100) / 100;
    // Inputs by reference are fetched by the worker before they run: that time comes off the budget.
    const fetchMs = fetchMsOf(q);
    const pathMs = options.pathOverheadMs + fetchMs;
    const request: SelectionRequest = {
      ...(q.task !== undefined ? { task: q.task } : {}), ...(q.model !== undefined ? { model: q.model } : {}), ...(q.variant !== undefined ? { variant: q.variant } : {}),
      batch: c.batch, latencyMs: Math.min(q.slo.latencyMs - pathMs, budgetMs - options.pathAheadMs - fetchMs), minAccuracy: q.slo.minAccuracy ?? 0, now,
      ...(q.slo.maxCostPerQuery !== undefined ? { maxCostPerQuery: q.slo.maxCostPerQuery } : {}),
      elements: elementsOf(q),
    };
    const snap = builder.snapshot(now);
    let sel = policy(snap, request);
    if (budgetMs <= 0 && sel.kind !== 'infeasible') {
      throw new InfaasError(ErrorCode.DeadlineExceeded, `deadline passed ${-budgetMs} ms before the query reached a dispatcher; not computed`, { deadline, now });
    }
    let note: string | undefined;
    let forwardDeadline = deadline;
    if (tries === 0 && ++decisions % Math.max(1, options.auditEvery) === 0 && options.auditEvery > 0) audit(q, request, sel);
    if (sel.kind === 'infeasible' && sel.reason === ROOM && snap.workers.size > 0) {
      // Perhaps only the load time breaks the objective: start the load now, so the next queries
      // find the variant running, and tell this one to retry when it is ready.
      const warm = policy(snap, { ...request, ignoreLoadTime: true });
      if (warm.kind === 'load') throw warmUp(warm, budgetMs, now);
    }
    if (sel.kind === 'infeasible' && sel.reason !== ROOM && q.slo.onInfeasible === 'closest' && budgetMs > 0 && sel.achievable.lowestLatencyMs !== undefined) {
      // The paper's behaviour on request: the fastest variant at the accuracy floor, late by design.
      const closest = policy(snap, { ...request, latencyMs: sel.achievable.lowestLatencyMs * (1 + 1e-9), ignoreLoadTime: true });
      if (closest.kind !== 'infeasible') {
        note = `closest: nothing meets ${q.slo.latencyMs} ms at accuracy >= ${request.minAccuracy}; served ${closest.variantId}, expected ~${(closest.expectedMs + pathMs).toFixed(1)} ms`;
        forwardDeadline = now + Math.max(budgetMs, 2 * (closest.expectedMs + pathMs) + 1000);
        sel = closest;
      }
    }
    if (sel.kind === 'busy' && sel.loading) {
      // The only candidate is still loading: retry advice counts down to when it is ready.
      const w = warming.get(`${sel.workerId}.${sel.variantId}`);
      const retryAfterMs = Math.max(1, Math.ceil(w ? Math.max(0, w.readyAt - now) + (w.readyAt <= now ? 100 : 0) : sel.retryAfterMs));
      throw new InfaasError(ErrorCode.InstanceLoading, `${sel.variantId} is loading on ${sel.workerId}; it cannot answer within ${budgetMs} ms: retry in ~${retryAfterMs} ms`, {
        variant: sel.variantId, worker: sel.workerId, readyInMs: retryAfterMs, retryAfterMs,
      });
    }
    if (sel.kind === 'busy') {
      // Capacity, not feasibility: refused here, cheaply, rather than after a hop to a full queue.
      noteUnplaced(snap, request);
      // Meanwhile an instance is added where there is room (a new worker), for the next queries.
      // A second decision: asked at most every 100 ms per busy variant, so overload stays cheap to refuse.
      if (now >= (busyCheckAt.get(sel.variantId) ?? 0)) {
        busyCheckAt.set(sel.variantId, now + BUSY_CHECK_MS);
        const warm = warmUpWhenBusy(policy, snap, request);
        if (warm) { warmUp(warm, budgetMs, now); builder.noteLoad(warm.workerId, warm.variantId); }
      }
      const retryAfterMs = Math.max(1, Math.ceil(sel.retryAfterMs));
      throw new InfaasError(ErrorCode.NoCapacity, `every instance that could serve this is busy: the soonest (${sel.variantId} on ${sel.workerId}) would take ~${(sel.expectedMs + pathMs).toFixed(1)} ms, the budget is ${budgetMs} ms; retry in ~${retryAfterMs} ms`, {
        variant: sel.variantId, worker: sel.workerId, expectedMs: sel.expectedMs + pathMs, retryAfterMs,
      });
    }
    if (sel.kind === 'infeasible') {
      if (snap.workers.size === 0 || sel.reason === ROOM) noteUnplaced(snap, request);
      if (snap.workers.size === 0) throw new InfaasError(ErrorCode.NoWorker, 'no worker is available (start one: infaas worker -s URL)', { retryAfterMs: 1000 });
      if (budgetMs < q.slo.latencyMs) {
        const whole = policy(snap, { ...request, latencyMs: q.slo.latencyMs - pathMs });
        // The objective is feasible; only the time left of it (a retry, a caller's deadline) is not.
        if (whole.kind !== 'infeasible') {
          throw new InfaasError(ErrorCode.DeadlineExceeded, budgetMs <= 0
            ? `deadline passed ${-budgetMs} ms before the query reached a dispatcher; not computed`
            : `only ${budgetMs} ms left of the ${q.slo.latencyMs} ms objective: too little for any variant; not computed`, { deadline, now });
        }
        sel = whole; // INFEASIBLE speaks of the objective, not of what was left of it
      }
      if (sel.reason === ROOM) {
        // Not now, not never: feasible variants exist, but no worker has the memory for one. The
        // VM-autoscaler hears of this demand; the cluster view refreshes every second.
        throw new InfaasError(ErrorCode.NoCapacity, `${sel.reason} (objective ${q.slo.latencyMs} ms, accuracy floor ${request.minAccuracy}): no worker has the memory for a feasible variant now`, { retryAfterMs: 1000 });
      }
      // What is achievable end to end: the profiled latency plus the serving path.
      if (sel.kind !== 'infeasible') throw new InfaasError(ErrorCode.Internal, 'selection changed its mind');
      const a = sel.achievable;
      const lowest = a.lowestLatencyMs !== undefined ? a.lowestLatencyMs + pathMs : undefined;
      const offer = [
        lowest !== undefined ? `lowest latency at accuracy >= ${a.atAccuracy}: ${lowest.toFixed(2)} ms` : '',
        a.highestAccuracy !== undefined ? `highest accuracy within ${q.slo.latencyMs} ms: ${a.highestAccuracy.toFixed(4)}` : '',
      ].filter(Boolean).join('; ');
      throw new InfaasError(ErrorCode.Infeasible, `${sel.reason} (objective ${q.slo.latencyMs} ms, of which ${options.pathOverheadMs} ms serving path${fetchMs > 0 ? ` and ~${fetchMs.toFixed(1)} ms fetching inputs by reference` : ''}; accuracy floor ${request.minAccuracy})${offer ? `. Achievable: ${offer}` : ''}${lowest !== undefined ? '; send slo.onInfeasible "closest" to be served the fastest anyway' : ''}`, {
        reason: sel.reason, atAccuracy: a.atAccuracy, withinMs: q.slo.latencyMs, pathOverheadMs: options.pathOverheadMs, ...(fetchMs > 0 ? { fetchMs } : {}),
        ...(lowest !== undefined ? { lowestLatencyMs: lowest } : {}), ...(a.highestAccuracy !== undefined ? { highestAccuracy: a.highestAccuracy } : {}),
      });
    }
    if (sel.kind === 'running' && now >= (dearCheckAt.get(sel.variantId) ?? 0)) {
      // At most once a second per running variant: is there a much cheaper one to warm up?
      dearCheckAt.set(sel.variantId, now + DEAR_CHECK_MS);
      const cheaper = warmUpCheaper(policy, snap, request, sel);
      if (cheaper) { warmUp(cheaper, budgetMs, now); builder.noteLoad(cheaper.workerId, cheaper.variantId); }
    }
    const local = locals.get(sel.workerId);
    if (local) {
      const forward: InferRequest = {
        ...(q.id !== undefined ? { id: q.id } : {}), variant: sel.variantId, inputs: q.inputs,
        ...(c.resultSubject ? { resultSubject: c.resultSubject } : {}), ...(sel.kind === 'load' ? { load: true } : {}), ...(q.variant ? { pinned: true } : {}),
        ...(note ? { note } : {}),
      };
      local({ req: forward, deadline: forwardDeadline, startedAt: c.startedAt, receivedAt: now, route: { json: c.json, ...(c.reply ? { reply: c.reply } : {}), ...(c.resultSubject ? { resultSubject: c.resultSubject, ...(q.id !== undefined ? { id: q.id } : {}) } : {}) } });
    } else {
      // The client's bytes go on untouched (no re-encoding of tensors it only passes on); the
      // routing facts travel in headers, and the worker validates the query again. The reply
      // subject is this dispatcher's ack subject: the worker answers the client (Infaas-Reply)
      // and then acks, and a dead worker's no-responders status comes back here, not to the client.
      const h = natsHeaders();
      h.set(CONTENT_TYPE, c.json ? JSON_TYPE : MSGPACK_TYPE);
      h.set(headerNames.deadline, String(forwardDeadline));
      h.set(headerNames.start, String(c.startedAt));
      h.set(headerNames.variant, sel.variantId);
      if (c.reply) h.set(headerNames.reply, c.reply);
      if (sel.kind === 'load') h.set(headerNames.load, '1');
      if (q.variant) h.set(headerNames.pinned, '1');
      if (note) h.set(headerNames.note, headerSafe(note));
      const key = String(++ackSeq);
      inFlight.set(key, { c, workerId: sel.workerId, sentAt: now, dueAt: forwardDeadline, expectedMs: sel.expectedMs, tries });
      nc.publish(subjects.worker.infer(sel.workerId), c.data, { headers: h, reply: `${ackBase}.${key}` });
    }
    if (sel.kind === 'load') builder.noteLoad(sel.workerId, sel.variantId);
    builder.noteSent(sel.workerId, sel.variantId);
    stats.forwarded++;
  };

  // Queries forwarded to workers in other processes, until the worker acks its answer. A worker
  // found dead (no responders on its subject, or on a probe) has its queries re-sent elsewhere
  // while their deadlines allow, else answered with an error: each query gets one answer.
  const ackBase = subjects.acks(config.controllerId);
  const inFlight = new Map<string, InFlight>();
  let ackSeq = 0;
  const onAck = (_err: Error | null, m: Msg): void => {
    const key = m.subject.slice(ackBase.length + 1);
    const f = inFlight.get(key);
    if (!f) return;
    let h: MsgHdrs | undefined;
    try { h = headersOf(m); } catch { h = undefined; }
    if (h?.code === 503) { workerDown(f.workerId, 'has no responders (stopped or died)'); return; }
    inFlight.delete(key);
    const refused = h?.get(headerNames.refused);
    if (refused) {
      // The worker answered nobody: it is draining (another worker takes the query), or the
      // instance this dispatcher's view showed has just gone (the query is decided again).
      if (refused === ErrorCode.WorkerDraining) cluster.markDown(f.workerId);
      builder.invalidate();
      resend(f, `refused it (${headerSafe(refused, 100)})`, refused === ErrorCode.VariantNotLoaded ? ErrorCode.VariantNotLoaded : ErrorCode.WorkerLost);
    }
  };

  /** A worker that cannot answer: routing stops at once, and what it holds goes elsewhere. */
  const workerDown = (workerId: string, why: string): void => {
    if (!cluster.isDown(workerId)) {
      cluster.markDown(workerId);
      builder.invalidate();
      log.warn({ worker: workerId, why }, 'worker lost: no more queries go to it until it heartbeats again');
      nc.publish(subjects.events.dispatcher, encodeJson({ type: 'worker-lost', at: Date.now(), controller: config.controllerId, worker: workerId, why }));
    }
    for (const [key, f] of inFlight) {
      if (f.workerId !== workerId) continue;
      inFlight.delete(key);
      resend(f, why);
    }
  };

  const resend = (f: InFlight, why: string, code: ErrorCode = ErrorCode.WorkerLost): void => {
    stats.resent++;
    try {
      if (f.tries >= MAX_RESENDS) throw new InfaasError(code, `sent ${f.tries + 1} times, the last time too`);
      dispatch(f.c, Date.now(), f.tries + 1);
    } catch (e) {
      const ie = toInfaasError(e);
      refuse(f.c, new InfaasError(ie.code, `worker ${f.workerId} ${why} while holding this query; re-sending it failed: ${ie.message}`, ie.details));
    }
  };

  // Silence: a worker that holds a query well past its expected time is asked whether it is still
  // there (no responders: it is dead); a query still unanswered past its deadline plus a grace is
  // answered here (the worker was alive but stalled, or died without closing its connection).
  const probing = new Map<string, number>();
  const probe = (workerId: string, now: number): void => {
    if (now - (probing.get(workerId) ?? 0) < PROBE_EVERY_MS) return;
    probing.set(workerId, now);
    nc.request(subjects.worker.instances(workerId), new Uint8Array(), { timeout: PROBE_TIMEOUT_MS }).then(
      () => undefined,
      (err: { code?: string }) => { if (err.code === '503') workerDown(workerId, 'did not answer a probe (no responders)'); },
    );
  };
  // Silence is judged only by a sweep that ran on time, and a query is given up only if it was
  // already overdue at the previous sweep: after a stall of this process, timers run before the
  // socket is read, and acks waiting in it must not be taken for silence.
  let lastSweep = Date.now();
  const sweep = setInterval(() => {
    const now = Date.now();
    const onTime = now - lastSweep < 2 * SWEEP_MS + 20;
    lastSweep = now;
    if (!onTime) return;
    for (const [key, f] of inFlight) {
      if (now > f.dueAt + ANSWER_GRACE_MS) {
        if (!f.overdue) { f.overdue = true; continue; }
        inFlight.delete(key);
        stats.lost++;
        refuse(f.c, new InfaasError(ErrorCode.WorkerLost, `worker ${f.workerId} did not answer by the deadline (+${ANSWER_GRACE_MS} ms); it may have stalled or died`, { worker: f.workerId, retryAfterMs: 0 }));
      } else if (now > f.sentAt + 2 * f.expectedMs + PROBE_AFTER_MS) {
        probe(f.workerId, now);
      }
    }
  }, SWEEP_MS);
  sweep.unref();

  // Loads started for queries whose objective only the load time broke: one per variant and worker
  // (the worker's ifAbsent makes it one across controllers too) until the instance shows up in KV;
  // asked again if it has not appeared well after it was due. Retry advice counts down to readiness.
  const warming = new Map<string, { readyAt: number; askAgainAt: number }>();
  // When each running variant may next be checked for a much cheaper alternative (warmUpCheaper),
  // and each busy variant for a warm-up elsewhere (warmUpWhenBusy).
  const dearCheckAt = new Map<string, number>();
  const busyCheckAt = new Map<string, number>();
  const warmUp = (sel: Extract<Selection, { kind: 'load' }>, budgetMs: number, now: number): InfaasError => {
    const key = `${sel.workerId}.${sel.variantId}`;
    let w = warming.get(key);
    if (!w || w.askAgainAt < now) {
      w = { readyAt: now + Math.max(0, sel.expectedMs), askAgainAt: now + Math.max(WARM_UP_MS, 2 * sel.expectedMs) };
      warming.set(key, w);
      nc.request(subjects.worker.load(sel.workerId), encodeJson({ variant: sel.variantId, noWait: true, ifAbsent: true }), { timeout: 5000 })
        .catch((err) => log.warn({ err: (err as Error).message, variant: sel.variantId }, 'warm-up load request failed'));
      log.info({ variant: sel.variantId, worker: sel.workerId }, 'warming up a variant for a tight objective');
    }
    // Past its due time and still not visible: the view lags by up to a heartbeat.
    const retryAfterMs = Math.max(w.readyAt - now, 0) + (w.readyAt <= now ? 100 : 0);
    return new InfaasError(ErrorCode.InstanceLoading, `${sel.variantId} fits this objective but was not running; it is loading on ${sel.workerId}: retry in ~${retryAfterMs.toFixed(0)} ms (loading does not fit in ${budgetMs} ms)`, {
      variant: sel.variantId, worker: sel.workerId, readyInMs: retryAfterMs, retryAfterMs,
    });
  };
  builder.onInstance((workerId, variantId) => { warming.delete(`${workerId}.${variantId}`); });

  // Demand that found no room: reported once a second per hardware class for the VM-autoscaler.
  const unplaced = new Map<string, number>();
  const noteUnplaced = (snap: Snapshot, r: SelectionRequest): void => {
    for (const c of unplacedClasses(snap, r)) unplaced.set(c, (unplaced.get(c) ?? 0) + 1);
  };

  const report = setInterval(() => {
    if (unplaced.size === 0 || nc.isClosed()) return;
    nc.publish(subjects.events.dispatcher, encodeJson({
      type: 'unplaced', at: Date.now(), controller: config.controllerId, byClass: Object.fromEntries(unplaced),
    }));
    unplaced.clear();
  }, 1000);
  report.unref();

  const audit = (q: Query, request: SelectionRequest, sel: Selection): void => {
    nc.publish(subjects.events.dispatcher, encodeJson({
      type: 'selection', at: Date.now(), controller: config.controllerId, query: q.id,
      request, selection: sel, sampledOneIn: options.auditEvery,
    }));
  };

  let stopService: (() => Promise<void>) | undefined;
  let stopAcks: (() => void) | undefined;
  const actor = createActor(dispatcherMachine.provide({
    actors: {
      start: fromPromise(async () => {
        await Promise.all([registry.start(stores), cluster.start(stores)]);
        const acks = nc.subscribe(`${ackBase}.*`, { callback: onAck });
        stopAcks = () => acks.unsubscribe();
        const { srv } = await addService(nc, {
          name: services.dispatcher, version: '0.1.0', description: 'INFaaS model-less query dispatcher',
          queue: queueGroups.dispatchers, metadata: { controller: config.controllerId },
        }, errors);
        srv.addEndpoint('query', { subject: subjects.query, handler });
        stopService = async () => { await srv.stop(); };
      }),
      stop: fromPromise(async () => {
        clearInterval(report);
        clearInterval(sweep);
        stopAcks?.();
        await stopService?.();
        registry.stop();
        cluster.stop();
      }),
    },
  }));
  actor.subscribe({ error: (err) => log.error({ err }, 'dispatcher actor crashed') });
  actor.start();
  const s = await waitFor(actor, (x) => x.value !== 'starting');
  if (s.value === 'failed') throw new InfaasError(ErrorCode.Internal, `dispatcher failed to start: ${s.context.error}`);
  log.info('dispatcher serving infaas.query');
  return {
    stats,
    attachLocal: (workerId, worker) => { locals.set(workerId, worker); },
    stop: async () => {
      actor.send({ type: 'stop.requested' });
      await waitFor(actor, (x) => x.status === 'done');
    },
  };
}
