// The worker dispatcher's data plane: decode and validate a forwarded query, enforce its deadline,
// route it to an instance of its variant, and answer exactly once, straight to the client's reply
// subject or to the query's result subject.
import { performance } from 'node:perf_hooks';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection, type ServiceMsg } from 'nats';
import type { QueryResult } from '../../schemas/query.js';
import type { BlobRef, Tensor } from '../../schemas/tensor.js';
import { Query } from '../../schemas/query.js';
import { InferRequest } from '../../schemas/worker.js';
import { validate } from '../../schemas/validate.js';
import { checkVariantId, headerNames, subjects } from '../../subjects/index.js';
import { isAnswerSubject } from '../../subjects/access.js';
import { decodePayload, encodeErrorReply, encodePayload, headerEpochMs, headersOf, isJson, tensorForJson } from '../../runtime/bus/codec.js';
import { ANSWER_HEADROOM_BYTES, FetchRate, chooseOffload, encodedSizes, type BlobStore, hasRefs, maxPayloadOf, messageBytes, offload, referencedBytes, refsOf, resolveTensors } from '../../runtime/bus/blobs.js';
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
  /** Requests bigger than this are refused; default no limit of our own: the server's max payload bounds them. */
  maxRequestBytes: number;
  /** A query's inputs by reference (claim check) may come to at most this many bytes in all. */
  maxReferencedBytes: number;
  /** Deadline for a query that carries none: generous, so direct callers are not surprised. */
  defaultDeadlineMs: number;
}

export const defaultInferenceOptions: InferenceOptions = Object.freeze({ maxRequestBytes: Infinity, maxReferencedBytes: 1024 ** 3, defaultDeadlineMs: 30_000 });

/**
 * Where and how a query's answer goes: the caller's reply subject (or the query's result subject);
 * then, for a query a dispatcher forwarded, an empty ack to the dispatcher's ack subject.
 */
export interface AnswerRoute {
  json: boolean; reply?: string; resultSubject?: string; ack?: string;
  /** The query's id: errors published to its result subject carry it, so an asynchronous caller can match them. */
  id?: string;
  /**
   * Inputs by reference of a query answered on a result subject: deleted once it is answered, as
   * nobody retries a published query (QueryClient deletes a request's own after its last try).
   */
  inputBlobs?: BlobRef[];
}

const EMPTY = new Uint8Array(0);
/** A subject a worker may publish an answer to: no spaces or control characters, no wildcards. */
const SUBJECT = /^[^\s*>\u0000-\u001f\u007f]{1,512}$/;

/** A query already decoded and validated (by this worker's endpoint, or by a dispatcher in this process). */
export interface AcceptedQuery { req: InferRequest; deadline: number; startedAt: number; receivedAt: number; route: AnswerRoute }

/**
 * `blobs` is the bucket of tensors by reference (claim check): inputs that came by reference are
 * fetched from it before routing to an instance, and outputs too big for one answer are put in it.
 * `onError` hears of every error answer sent (the worker counts them for `nats micro stats`);
 * `fetchRate` hears how long each fetch of inputs by reference took (the worker's record reports it).
 */
export function inferenceHandler(nc: NatsConnection, router: Router, options: InferenceOptions, log: Logger, blobs: BlobStore, onError?: (err: InfaasError) => void, fetchRate = new FetchRate()) {
  const sendError = (route: AnswerRoute, err: InfaasError): void => {
    if (publish(route, encodeErrorReply(err, route.json, route.resultSubject ? route.id : undefined))) onError?.(err);
  };

  const send = (route: AnswerRoute, outcome: Outcome): void => {
    if ('error' in outcome) { sendError(route, outcome.error); return; }
    const shown = route.json ? jsonOutputs(outcome.result.outputs) : outcome.result.outputs;
    const enc = encodePayload({ ...outcome.result, outputs: shown }, route.json);
    const size = messageBytes(enc.data, enc.headers) + ANSWER_HEADROOM_BYTES;
    if (size <= maxPayloadOf(nc)) { publish(route, enc); return; }
    // Too big for one message: the largest outputs wait in the blobs bucket, the answer carries references.
    storeOutputs(outcome.result, shown, size, route.json).then(
      (sent) => publish(route, sent),
      (e: unknown) => sendError(route, toInfaasError(e)),
    );
  };

  const storeOutputs = async (result: QueryResult, shown: Record<string, Tensor>, size: number, json: boolean) => {
    const limit = maxPayloadOf(nc);
    const names = chooseOffload(encodedSizes(shown, json), size, limit);
    if (!names) throw new InfaasError(ErrorCode.PayloadTooLarge, `the answer is ${size} bytes even with every output by reference; the server's max payload is ${limit}`);
    let stored: Record<string, unknown>;
    try {
      stored = await offload(blobs, result.outputs, names);
    } catch (e) {
      throw new InfaasError(ErrorCode.Internal, `the answer (${size} bytes) is over the max payload of ${limit} bytes, and its outputs could not be stored by reference: ${(e as Error).message}`);
    }
    const outputs = { ...shown, ...Object.fromEntries(names.map((n) => [n, stored[n]])) };
    return encodePayload({ ...result, outputs }, json);
  };

  /** Sends an answer (true when one went out), then acks the dispatcher and drops inputs by reference. */
  const publish = (route: AnswerRoute, enc: { data: Uint8Array; headers: MsgHdrs }): boolean => {
    const to = route.resultSubject ?? route.reply;
    let sent = false;
    try {
      if (to) { nc.publish(to, enc.data, { headers: enc.headers }); sent = true; }
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'could not send an answer');
    }
    if (route.ack) ack(route.ack);
    if (route.inputBlobs) void blobs.delete(route.inputBlobs);
    return sent;
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

  const admit = (a: AcceptedQuery, now: number, where: string): void => {
    if (router.draining) throw new InfaasError(ErrorCode.WorkerDraining, 'this worker is draining and takes no new queries', { retryAfterMs: 0 });
    if (a.deadline <= now) {
      throw new InfaasError(ErrorCode.DeadlineExceeded, `deadline passed ${now - a.deadline} ms ${where}; not computed`, { deadline: a.deadline, now });
    }
  };

  const route = (a: AcceptedQuery, now: number) => router.route(a.req.variant, { load: a.req.load ?? false, pinned: a.req.pinned ?? false }, a.deadline, now);

  const enqueue = (a: AcceptedQuery, inputs: Record<string, Tensor>, now: number): void => {
    const { req } = a;
    const instance = route(a, now);
    const checked = checkInputs(inputs, instance.spec.inputs, instance.spec.maxBatch);
    instance.enqueue({
      ...(req.id !== undefined ? { id: req.id } : {}),
      checked, deadline: a.deadline, startedAt: a.startedAt, receivedAt: a.receivedAt, ...(req.note ? { note: req.note } : {}), ...(req.pinned ? { pinned: true } : {}),
      answer: (outcome) => send(a.route, outcome),
    });
  };

  const fail = (a: AcceptedQuery, e: unknown): void => {
    const ie = toInfaasError(e);
    if (ie.code === ErrorCode.Internal) log.error({ err: e }, 'inference request failed');
    // A dispatcher routed by a view older than this worker's instances (one was just unloaded or
    // switched): it decides again rather than the client hearing of it.
    if (a.route.ack && (ie.code === ErrorCode.VariantNotLoaded || ie.code === ErrorCode.WorkerDraining)) { ack(a.route.ack, ie.code); return; }
    sendError(a.route, ie);
  };

  /** Routes an accepted query to an instance; every outcome, errors included, is answered exactly once. */
  const accept = (a: AcceptedQuery): void => {
    try {
      admit(a, a.receivedAt, 'before the query reached the worker');
      if (!hasRefs(a.req.inputs)) { enqueue(a, a.req.inputs as Record<string, Tensor>, a.receivedAt); return; }
      // Inputs by reference: refused or sent back before the fetch when this worker cannot take the query.
      route(a, a.receivedAt);
      if (a.route.resultSubject) a = { ...a, route: { ...a.route, inputBlobs: refsOf(a.req.inputs) } };
      const fetchStarted = performance.now();
      resolveTensors(blobs, a.req.inputs, 'input', options.maxReferencedBytes).then((inputs) => {
        fetchRate.note(referencedBytes(a.req.inputs), performance.now() - fetchStarted);
        try {
          const now = Date.now();
          admit(a, now, 'while its inputs were fetched from the blobs bucket');
          enqueue(a, inputs, now);
        } catch (e) { fail(a, e); }
      }, (e: unknown) => fail(a, e));
    } catch (e) {
      fail(a, e);
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
      if (req.resultSubject) route = { ...route, resultSubject: req.resultSubject, ...(req.id !== undefined ? { id: req.id } : {}) };
      const deadline = headerEpochMs(h, headerNames.deadline) ?? receivedAt + options.defaultDeadlineMs;
      const startedAt = headerEpochMs(h, headerNames.start) ?? receivedAt;
      accept({ req, deadline, startedAt, receivedAt, route });
    } catch (e) {
      const ie = toInfaasError(e);
      if (ie.code === ErrorCode.Internal) log.error({ err: e }, 'inference request failed');
      sendError(route, ie);
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

function jsonOutputs(outputs: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, tensorForJson(v)]));
}
