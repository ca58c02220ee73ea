// The model-less query client: send a query to infaas.query and get the answer (or a typed
// InfaasError), or publish it with a result subject and receive answers there. Tensors that would
// take a message past the bus's max payload travel by reference through the blobs bucket (claim
// check, docs/query.md "Big tensors"), both ways, without the caller seeing it.
import { headers as natsHeaders, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import type { Query, QueryResult, WireQueryResult } from '../../schemas/query.js';
import { TensorRef, isTensorRef, type BlobRef, type Tensor } from '../../schemas/tensor.js';
import { validate } from '../../schemas/validate.js';
import { buckets, headerNames, subjects } from '../../subjects/index.js';
import { encodePayload, tensorForJson } from '../bus/codec.js';
import { FORWARD_HEADROOM_BYTES, chooseOffload, encodedSizes, openBlobStore, type BlobStore, hasRefs, maxPayloadOf, messageBytes, offload, refsOf, resolveTensors } from '../bus/blobs.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { answerOf } from './worker-client.js';
import { permissionDenied } from '../bus/auth.js';

export interface QueryOptions {
  json?: boolean;
  /** An absolute deadline (epoch ms) of the caller's own, sent as Infaas-Deadline; the earlier of it and the SLO applies. */
  deadline?: number;
  /** How long to wait for each answer; default until the deadline plus a second. */
  timeoutMs?: number;
  /**
   * Retry errors that say a retry can succeed (INSTANCE_LOADING, NO_CAPACITY, NO_WORKER...) after
   * their retryAfterMs, while the query's deadline allows; default true. The deadline travels with
   * every try, so the objective holds end to end.
   */
  retry?: boolean;
  /** At most this many retries of one query (default 2, unbounded with retryUntil): retries add load exactly when capacity is short. */
  maxRetries?: number;
  /**
   * Keep retrying retryable errors until this instant (epoch ms) instead of only within the query's
   * deadline: each try then has the whole objective (from its own receipt), for a caller that would
   * rather wait for a variant to load than fail (the CLI's `query --wait`).
   */
  retryUntil?: number;
  /** Told of each retry before its wait (the error that caused it and the wait in ms). */
  onRetry?: (err: InfaasError, waitMs: number) => void;
  /**
   * Send the tensors that would take a query past the bus's max payload by reference through the
   * blobs Object Store bucket (default true). Off, such a query is PAYLOAD_TOO_LARGE.
   */
  claimCheck?: boolean;
}

/** An Infaas-Deadline header and its value: what a try adds to the message's size. */
const DEADLINE_HEADER_BYTES = headerNames.deadline.length + 2 + 13 + 2;

/** A query ready to send: encoded once for every try, and the blobs it put (deleted after the last). */
interface Prepared { q: Query; data: Uint8Array; headers: MsgHdrs; uploaded: BlobRef[] }

export class QueryClient {
  private blobs?: Promise<BlobStore>;

  constructor(private readonly nc: NatsConnection) {}

  async query(q: Query, options: QueryOptions = {}): Promise<QueryResult> {
    const p = await this.prepare(q, options);
    try {
      // Counted from here: an upload of big tensors comes before the objective starts.
      const deadline = Math.min(options.deadline ?? Infinity, Date.now() + q.slo.latencyMs);
      const until = options.retryUntil;
      for (let tries = 0; ; tries++) {
        try {
          // The first try carries only a deadline the caller gave: the objective then counts from
          // the dispatcher's receipt, whose serving-path allowance covers the hop to it. Retries
          // carry the first try's deadline, so the objective holds across them (unless the caller
          // would rather wait: retryUntil gives each try the whole objective).
          const fresh = (tries === 0 || until !== undefined) && options.deadline === undefined;
          return await this.once(p, fresh ? undefined : deadline, options);
        } catch (err) {
          const retry = options.retry !== false && tries < (options.maxRetries ?? (until !== undefined ? Infinity : 2));
          const wait = err instanceof InfaasError && err.retryable && retry ? err.retryAfterMs : undefined;
          // Only when an answer can still come in time after the wait (a query needs at least a millisecond).
          if (wait === undefined || Date.now() + wait + 1 >= (until ?? deadline)) throw err;
          options.onRetry?.(err as InfaasError, wait);
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    } finally {
      // The answer is in (or will never come): the inputs put for this query have served.
      if (p.uploaded.length > 0) await (await this.blobStore()).delete(p.uploaded);
    }
  }

  private async once(p: Prepared, deadline: number | undefined, options: QueryOptions): Promise<QueryResult> {
    const h = this.headersFor(p);
    if (deadline !== undefined) h.set(headerNames.deadline, String(deadline));
    const timeout = options.timeoutMs ?? Math.max(1, (deadline ?? Date.now() + p.q.slo.latencyMs) - Date.now()) + 1000;
    let answer: WireQueryResult;
    try {
      const reply = await this.nc.request(subjects.query, p.data, { headers: h, timeout });
      answer = answerOf<WireQueryResult>(reply.data, reply.headers, options.json ?? false);
    } catch (err) {
      if (err instanceof InfaasError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'PERMISSIONS_VIOLATION') throw permissionDenied(err)!;
      if (code === '503') throw new InfaasError(ErrorCode.NoWorker, 'nothing serves infaas.query: is a controller running? (infaas up / infaas controller)');
      if (code === 'TIMEOUT') throw new InfaasError(ErrorCode.Timeout, `no answer within ${timeout} ms`);
      throw err;
    }
    return this.claim(answer, options.json ?? false);
  }

  /** Publishes a query whose answer goes to its resultSubject (see `results`); resolves once it is sent. */
  async publish(q: Query & { resultSubject: string }, options: QueryOptions = {}): Promise<void> {
    // Inputs put for a published query are deleted by the worker once it has answered it (or by the bucket's TTL).
    const p = await this.prepare(q, options);
    this.nc.publish(subjects.query, p.data, { headers: this.headersFor(p) });
  }

  /** Answers (or errors) arriving on a result subject under infaas.results. */
  results(subject: string, onAnswer: (answer: QueryResult | InfaasError) => void, json = false): Subscription {
    if (!subject.startsWith(subjects.resultsPrefix)) throw new InfaasError(ErrorCode.BadRequest, `result subjects start with ${subjects.resultsPrefix}`);
    return this.nc.subscribe(subject, {
      callback: (err, m) => {
        // A refused subscription (another user's result subject) ends it with this error.
        if (err) return onAnswer(permissionDenied(err) ?? new InfaasError(ErrorCode.Internal, err.message));
        let answer: WireQueryResult;
        try { answer = answerOf<WireQueryResult>(m.data, m.headers, json); } catch (e) { return onAnswer(e as InfaasError); }
        if (!hasRefs(answer.outputs)) return onAnswer(answer as QueryResult);
        this.claim(answer, json).then(onAnswer, (e: unknown) => onAnswer(e instanceof InfaasError ? e : new InfaasError(ErrorCode.Internal, String(e))));
      },
    });
  }

  /**
   * The query encoded for the wire. When it would not fit in one message (the server's max payload,
   * less room for the dispatcher's routing headers), its largest inputs go to the blobs bucket first.
   */
  private async prepare(q: Query, options: QueryOptions): Promise<Prepared> {
    const json = options.json ?? false;
    const limit = maxPayloadOf(this.nc);
    const budget = limit - FORWARD_HEADROOM_BYTES;
    let enc = encodePayload(q, json);
    const size = messageBytes(enc.data, enc.headers) + DEADLINE_HEADER_BYTES;
    if (size <= budget) return { q, ...enc, uploaded: [] };
    const names = options.claimCheck === false ? undefined : chooseOffload(encodedSizes(q.inputs, json), size, budget);
    if (!names || names.length === 0) throw tooLarge(size, limit, options.claimCheck !== false);
    const os = await this.blobStore();
    const inputs = await offload(os, q.inputs, names);
    const uploaded = names.map((n) => (inputs[n] as TensorRef).ref);
    const sent = { ...q, inputs };
    enc = encodePayload(sent, json);
    const after = messageBytes(enc.data, enc.headers) + DEADLINE_HEADER_BYTES;
    if (after > budget) {
      await os.delete(uploaded);
      throw tooLarge(after, limit, true);
    }
    return { q: sent, ...enc, uploaded };
  }

  private headersFor(p: Prepared): MsgHdrs {
    // A fresh copy per try: each try sets its own deadline.
    const h = natsHeaders();
    for (const [k, vs] of p.headers) h.set(k, vs[0]);
    return h;
  }

  /** An answer with every output by reference fetched from the blobs bucket (then deleted there). */
  private async claim(a: WireQueryResult, json: boolean): Promise<QueryResult> {
    if (!hasRefs(a.outputs)) return a as QueryResult;
    for (const [name, t] of Object.entries(a.outputs)) if (isTensorRef(t)) validate(TensorRef, t, `answer output ${name}`);
    const os = await this.blobStore();
    try {
      const outputs = await resolveTensors(os, a.outputs, 'output');
      // A JSON caller gets numbers, as the outputs that came inline.
      const shown: Record<string, Tensor> = json ? Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, tensorForJson(v)])) : outputs;
      return { ...a, outputs: shown };
    } finally {
      await os.delete(refsOf(a.outputs));
    }
  }

  private blobStore(): Promise<BlobStore> {
    this.blobs ??= openBlobStore(this.nc).catch((err: unknown) => {
      this.blobs = undefined;
      const denied = permissionDenied(err);
      throw denied ?? err;
    });
    return this.blobs;
  }
}

function tooLarge(bytes: number, limit: number, claimCheck: boolean): InfaasError {
  const room = `the bus takes at most ${limit} bytes per message (the server's max payload), of which a query may use ${limit - FORWARD_HEADROOM_BYTES} (the rest is for the dispatcher's routing headers)`;
  return new InfaasError(ErrorCode.PayloadTooLarge, claimCheck
    ? `the query is ${bytes} bytes even with its big tensors sent by reference: ${room}; shorten what is not a tensor (many small tensors? send them as one), or raise the max payload (infaas up --max-payload)`
    : `the query is ${bytes} bytes: ${room}. Send its tensors by reference through the Object Store bucket ${buckets.blobs} (QueryClient's claimCheck, on by default), or raise the max payload (infaas up --max-payload)`,
  { bytes, maxPayload: limit });
}
