// The worker dispatcher's data plane: decode and validate a forwarded query, enforce its deadline,
// route it to an instance of its variant, and answer exactly once, straight to the client's reply
// subject or to the query's result subject.
import { headers as natsHeaders, type MsgHdrs, type NatsConnection, type ServiceMsg } from 'nats';
import type { QueryResult } from '../../schemas/query.js';
import { Query } from '../../schemas/query.js';
import { InferRequest } from '../../schemas/worker.js';
import { validate } from '../../schemas/validate.js';
import { checkVariantId, headerNames, subjects } from '../../subjects/index.js';
import { isAnswerSubject } from '../../subjects/access.js';
import { decodePayload, encodeErrorReply, encodePayload, headerEpochMs, headersOf, isJson, tensorForJson } from '../../runtime/bus/codec.js';
import { ErrorCode, InfaasError, toInfaasError } from '../../schemas/errors.js';
import type { Logger } from '../../runtime/log.js';
import { checkInputs, type Outcome, type VariantInstance } from '../instance/index.js';

/** What the data plane needs from the worker host. */
export interface Router {
  readonly draining: boolean;
  /** An instance that can take a query due at `deadline`, or a specific error (not loaded, loading too long, no room...). */
  route(variant: string, opts: { load: boolean; pinned: boolean }, deadline: number, now: number): VariantInstance;
}

export interface InferenceOptions {
  /** Requests bigger than this are refused (the server's max_payload bounds it anyway). */
  maxRequestBytes: number;
  /** Deadline for a query that carries none: generous, so direct callers are not surprised. */
  defaultDeadlineMs: number;
}

export const defaultInferenceOptions: InferenceOptions = Object.freeze({ maxRequestBytes: 1024 * 1024, defaultDeadlineMs: 30_000 });

/**
 * Where and how a query's answer goes: the caller's reply subject (or the query's result subject);
 * then, for a query a dispatcher forwarded, an empty ack to the dispatcher's ack subject.
 */
export interface AnswerRoute { json: boolean; reply?: string; resultSubject?: string; ack?: string }

const EMPTY = new Uint8Array(0);
/** A subject a worker may publish an answer to: no spaces or control characters, no wildcards. */
const SUBJECT = /^[^\s*>\u0000-\u001f\u007f]{1,512}$/;

/** A query already decoded and validated (by this worker's endpoint, or by a dispatcher in this process). */
export interface AcceptedQuery { req: InferRequest; deadline: number; startedAt: number; receivedAt: number; route: AnswerRoute }

export function inferenceHandler(nc: NatsConnection, router: Router, options: InferenceOptions, log: Logger) {
  const maxPayload = () => nc.info?.max_payload ?? 1024 * 1024;

  const send = (route: AnswerRoute, outcome: Outcome): void => {
    const json = route.json;
    let data: Uint8Array;
    let h = natsHeaders();
    let err = 'error' in outcome ? outcome.error : undefined;
    if (!err) {
      let result = (outcome as { result: QueryResult }).result;
      if (json) result = { ...result, outputs: Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, tensorForJson(v)])) };
      const enc = encodePayload(result, json);
      if (enc.data.length + 256 > maxPayload()) {
        err = new InfaasError(ErrorCode.PayloadTooLarge, `the answer is ${enc.data.length} bytes, over the server's max payload of ${maxPayload()} bytes`);
      } else {
        data = enc.data;
        h = enc.headers;
      }
    }
    if (err) ({ data, headers: h } = encodeErrorReply(err, json));
    const to = route.resultSubject ?? route.reply;
    try {
      if (to) nc.publish(to, data!, { headers: h });
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'could not send an answer');
    }
    if (route.ack) ack(route.ack);
  };

  const ack = (subject: string, refused?: string): void => {
    try {
      if (refused) {
        const h = natsHeaders();
        h.set(headerNames.refused, refused);
        nc.publish(subject, EMPTY, { headers: h });
      } else {
        nc.publish(subject, EMPTY);
      }
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'could not ack a forwarded query');
    }
  };

  /** Routes an accepted query to an instance; every outcome, errors included, is answered exactly once. */
  const accept = (a: AcceptedQuery): void => {
    try {
      if (router.draining) throw new InfaasError(ErrorCode.WorkerDraining, 'this worker is draining and takes no new queries', { retryAfterMs: 0 });
      if (a.deadline <= a.receivedAt) {
        throw new InfaasError(ErrorCode.DeadlineExceeded, `deadline passed ${a.receivedAt - a.deadline} ms before the query reached the worker; not computed`, { deadline: a.deadline, now: a.receivedAt });
      }
      const { req } = a;
      const instance = router.route(req.variant, { load: req.load ?? false, pinned: req.pinned ?? false }, a.deadline, a.receivedAt);
      const checked = checkInputs(req.inputs, instance.spec.inputs, instance.spec.maxBatch);
      instance.enqueue({
        ...(req.id !== undefined ? { id: req.id } : {}),
        checked, deadline: a.deadline, startedAt: a.startedAt, receivedAt: a.receivedAt, ...(req.note ? { note: req.note } : {}), ...(req.pinned ? { pinned: true } : {}),
        answer: (outcome) => send(a.route, outcome),
      });
    } catch (e) {
      const ie = toInfaasError(e);
      if (ie.code === ErrorCode.Internal) log.error({ err: e }, 'inference request failed');
      // A dispatcher routed by a view older than this worker's instances (one was just unloaded or
      // switched): it decides again rather than the client hearing of it.
      if (a.route.ack && (ie.code === ErrorCode.VariantNotLoaded || ie.code === ErrorCode.WorkerDraining)) { ack(a.route.ack, ie.code); return; }
      send(a.route, { error: ie });
    }
  };

  const handler = (err: Error | null, msg: ServiceMsg): void => {
    if (err) {
      log.error({ err }, 'inference endpoint stopped');
      return;
    }
    const receivedAt = Date.now();
    let h: MsgHdrs | undefined;
    let route: AnswerRoute = { json: false, ...(msg.reply ? { reply: msg.reply } : {}) };
    try {
      h = headersOf(msg);
      route = routeOf(msg, h, isJson(h));
      if (msg.data.length > options.maxRequestBytes) {
        throw new InfaasError(ErrorCode.PayloadTooLarge, `request is ${msg.data.length} bytes; this worker takes at most ${options.maxRequestBytes}`);
      }
      if (router.draining) {
        // A dispatcher's query goes back to it, unanswered, to be sent to another worker.
        if (route.ack) { ack(route.ack, ErrorCode.WorkerDraining); return; }
        throw new InfaasError(ErrorCode.WorkerDraining, 'this worker is draining and takes no new queries', { retryAfterMs: 0 });
      }
      const body = decodePayload(msg.data, h);
      const routed = h?.get(headerNames.variant);
      const req = routed ? forwardedQuery(body, routed, h!) : validate(InferRequest, body, 'inference request');
      if (req.resultSubject) route = { ...route, resultSubject: req.resultSubject };
      const deadline = headerEpochMs(h, headerNames.deadline) ?? receivedAt + options.defaultDeadlineMs;
      const startedAt = headerEpochMs(h, headerNames.start) ?? receivedAt;
      accept({ req, deadline, startedAt, receivedAt, route });
    } catch (e) {
      const ie = toInfaasError(e);
      if (ie.code === ErrorCode.Internal) log.error({ err: e }, 'inference request failed');
      send(route, { error: ie });
    }
  };
  return { handler, accept };
}

/**
 * A direct caller is answered on its reply subject. A dispatcher's forwarded query carries the
 * client's reply subject in Infaas-Reply, and its own reply subject is the dispatcher's ack subject.
 */
function routeOf(msg: ServiceMsg, h: MsgHdrs | undefined, json: boolean): AnswerRoute {
  if (msg.reply?.startsWith(subjects.acksPrefix) && h?.get(headerNames.variant)) {
    const reply = h.get(headerNames.reply);
    return { json, ack: msg.reply, ...(reply && SUBJECT.test(reply) && isAnswerSubject(reply) ? { reply } : {}) };
  }
  return { json, ...(msg.reply ? { reply: msg.reply } : {}) };
}

/** A client's query forwarded untouched by a dispatcher, with the routing facts in headers, as an inference request. */
function forwardedQuery(body: unknown, variant: string, h: MsgHdrs): InferRequest {
  const q = validate(Query, body, 'forwarded query');
  const note = h.get(headerNames.note);
  // The query (tensors included) is validated once, above; of the headers only the variant needs a check.
  return {
    ...(q.id !== undefined ? { id: q.id } : {}), variant: checkVariantId(variant), inputs: q.inputs,
    ...(q.resultSubject ? { resultSubject: q.resultSubject } : {}),
    ...(h.get(headerNames.load) === '1' ? { load: true } : {}), ...(h.get(headerNames.pinned) === '1' ? { pinned: true } : {}),
    ...(note ? { note: note.slice(0, 1000) } : {}),
  };
}
