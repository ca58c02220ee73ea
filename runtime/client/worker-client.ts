// A client for one worker's endpoints: forwarded inference (MessagePack or JSON, deadline header)
// and the JSON control endpoints. The controller's dispatcher and the tests use the same calls.
import { headers as natsHeaders, type NatsConnection } from 'nats';
import type { QueryResult } from '../../schemas/query.js';
import type { InferRequest, InstanceRecord } from '../../schemas/worker.js';
import { headerNames, subjects } from '../../subjects/index.js';
import { decodeJson, decodePayload, encodeJson, encodePayload } from '../bus/codec.js';
import { ErrorCode, InfaasError, type ErrorBody } from '../../schemas/errors.js';
import { permissionDenied } from '../bus/auth.js';

export interface InferOptions {
  /** Relative deadline (ms from now); sent as the absolute Infaas-Deadline header. */
  deadlineMs?: number;
  /** Absolute deadline, epoch ms (wins over deadlineMs). */
  deadline?: number;
  json?: boolean;
  /** How long to wait for the answer; default: until the deadline plus a second, else 30 s. */
  timeoutMs?: number;
}

/** Turns an answer into its value, or throws the InfaasError it carries. */
export function answerOf<T>(data: Uint8Array, h: { get(k: string): string } | undefined, json: boolean): T {
  const body = json ? decodeJson(data) : decodePayload(data, h as never);
  if (h?.get('Nats-Service-Error-Code')) throw InfaasError.fromBody(body as ErrorBody);
  return body as T;
}

export class WorkerClient {
  constructor(private readonly nc: NatsConnection, private readonly requestTimeoutMs = 60_000) {}

  inferHeaders(options: InferOptions = {}) {
    const h = natsHeaders();
    const deadline = options.deadline ?? (options.deadlineMs !== undefined ? Date.now() + options.deadlineMs : undefined);
    if (deadline !== undefined) h.set(headerNames.deadline, String(deadline));
    return { h, deadline };
  }

  async infer(workerId: string, req: InferRequest, options: InferOptions = {}): Promise<QueryResult> {
    const enc = encodePayload(req, options.json);
    const { h, deadline } = this.inferHeaders(options);
    for (const [k, v] of enc.headers) h.set(k, v[0]);
    const timeout = options.timeoutMs ?? (deadline !== undefined ? Math.max(1000, deadline - Date.now() + 1000) : 30_000);
    try {
      const reply = await this.nc.request(subjects.worker.infer(workerId), enc.data, { headers: h, timeout });
      return answerOf<QueryResult>(reply.data, reply.headers, options.json ?? false);
    } catch (err) {
      throw this.transportError(err, workerId);
    }
  }

  private transportError(err: unknown, workerId: string): unknown {
    if (err instanceof InfaasError) return err;
    const code = (err as { code?: string }).code;
    if (code === 'PERMISSIONS_VIOLATION') return permissionDenied(err);
    if (code === '503') return new InfaasError(ErrorCode.WorkerDraining, `worker ${workerId} is not serving (no responders)`);
    if (code === 'TIMEOUT') return new InfaasError(ErrorCode.Timeout, `worker ${workerId} did not answer in time`);
    return err;
  }

  private async control<T>(subject: string, body: unknown, workerId: string): Promise<T> {
    try {
      const reply = await this.nc.request(subject, encodeJson(body), { timeout: this.requestTimeoutMs });
      return answerOf<T>(reply.data, reply.headers, true);
    } catch (err) {
      throw this.transportError(err, workerId);
    }
  }

  load(workerId: string, variant: string, noWait = false): Promise<InstanceRecord> {
    return this.control(subjects.worker.load(workerId), { variant, ...(noWait ? { noWait } : {}) }, workerId);
  }

  unload(workerId: string, target: { instance?: string; variant?: string }): Promise<{ unloaded: string[] }> {
    return this.control(subjects.worker.unload(workerId), target, workerId);
  }

  instances(workerId: string): Promise<{ worker: string; state: string; instances: InstanceRecord[] }> {
    return this.control(subjects.worker.instances(workerId), {}, workerId);
  }

  drain(workerId: string): Promise<{ worker: string; state: string; instances: number; inFlight: number }> {
    return this.control(subjects.worker.drain(workerId), {}, workerId);
  }
}
