// The model-less query client: send a query to infaas.query and get the answer (or a typed
// InfaasError), or publish it with a result subject and receive answers there.
import type { NatsConnection, Subscription } from 'nats';
import type { Query, QueryResult } from '../../schemas/query.js';
import { headerNames, subjects } from '../../subjects/index.js';
import { encodePayload } from '../bus/codec.js';
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
  /** At most this many retries of one query (default 2): retries add load exactly when capacity is short. */
  maxRetries?: number;
}

export class QueryClient {
  constructor(private readonly nc: NatsConnection) {}

  async query(q: Query, options: QueryOptions = {}): Promise<QueryResult> {
    const deadline = Math.min(options.deadline ?? Infinity, Date.now() + q.slo.latencyMs);
    for (let tries = 0; ; tries++) {
      try {
        // The first try carries only a deadline the caller gave: the objective then counts from
        // the dispatcher's receipt, whose serving-path allowance covers the hop to it. Retries
        // carry the first try's deadline, so the objective holds across them.
        return await this.once(q, tries === 0 && options.deadline === undefined ? undefined : deadline, options);
      } catch (err) {
        const retry = options.retry !== false && tries < (options.maxRetries ?? 2);
        const wait = err instanceof InfaasError && err.retryable && retry ? err.retryAfterMs : undefined;
        // Only when an answer can still come in time after the wait (a query needs at least a millisecond).
        if (wait === undefined || Date.now() + wait + 1 >= deadline) throw err;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async once(q: Query, deadline: number | undefined, options: QueryOptions): Promise<QueryResult> {
    const enc = encodePayload(q, options.json);
    if (deadline !== undefined) enc.headers.set(headerNames.deadline, String(deadline));
    const timeout = options.timeoutMs ?? Math.max(1, (deadline ?? Date.now() + q.slo.latencyMs) - Date.now()) + 1000;
    try {
      const reply = await this.nc.request(subjects.query, enc.data, { headers: enc.headers, timeout });
      return answerOf<QueryResult>(reply.data, reply.headers, options.json ?? false);
    } catch (err) {
      if (err instanceof InfaasError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'PERMISSIONS_VIOLATION') throw permissionDenied(err)!;
      if (code === '503') throw new InfaasError(ErrorCode.NoWorker, 'nothing serves infaas.query: is a controller running? (infaas up / infaas controller)');
      if (code === 'TIMEOUT') throw new InfaasError(ErrorCode.Timeout, `no answer within ${timeout} ms`);
      throw err;
    }
  }

  /** Publishes a query whose answer goes to its resultSubject (see `results`). */
  publish(q: Query & { resultSubject: string }, options: QueryOptions = {}): void {
    const enc = encodePayload(q, options.json);
    this.nc.publish(subjects.query, enc.data, { headers: enc.headers });
  }

  /** Answers (or errors) arriving on a result subject under infaas.results. */
  results(subject: string, onAnswer: (answer: QueryResult | InfaasError) => void, json = false): Subscription {
    if (!subject.startsWith(subjects.resultsPrefix)) throw new InfaasError(ErrorCode.BadRequest, `result subjects start with ${subjects.resultsPrefix}`);
    return this.nc.subscribe(subject, {
      callback: (err, m) => {
        // A refused subscription (another user's result subject) ends it with this error.
        if (err) return onAnswer(permissionDenied(err) ?? new InfaasError(ErrorCode.Internal, err.message));
        try { onAnswer(answerOf<QueryResult>(m.data, m.headers, json)); } catch (e) { onAnswer(e as InfaasError); }
      },
    });
  }
}
