// NATS micro-service endpoints with a JSON control plane: decode, validate, handle, answer or respondError.
import type { TSchema, Static } from '@sinclair/typebox';
import { RequestStrategy, type Endpoint, type NatsConnection, type Service, type ServiceConfig, type ServiceMsg } from 'nats';
import { validate } from '../../schemas/validate.js';
import { decodeJson, encodeJson } from './codec.js';
import { toInfaasError, type InfaasError } from '../../schemas/errors.js';
import type { Logger } from '../log.js';
import { settleWithin } from '../stopping.js';

export interface JsonEndpoint<S extends TSchema> {
  name: string;
  subject: string;
  schema: S;
  /** The reply value (encoded as one-line JSON). Throwing answers with the error instead. */
  handle: (request: Static<S>, msg: ServiceMsg) => Promise<unknown>;
}

/**
 * Error answers per endpoint, for `$SRV.STATS` (`nats micro stats`). nats.js 2.29 counts an error
 * only when a handler throws synchronously, and then answers with an empty body of its own; our
 * errors are answered later (after an await) or by another part (a worker answers the client of a
 * dispatcher), with a body, so they are counted here and added to the endpoint's `num_errors` by
 * the service's statsHandler when stats are asked for.
 */
export class EndpointErrors {
  private readonly pending = new Map<string, { count: number; last: string }>();

  /** One error answer sent on behalf of `endpoint`. */
  count(endpoint: string, err: InfaasError): void {
    const p = this.pending.get(endpoint);
    if (p) { p.count++; p.last = err.headerText; } else this.pending.set(endpoint, { count: 1, last: err.headerText });
  }

  /**
   * ServiceConfig.statsHandler. The library hands it the endpoint's own record, whose `stats` it
   * reads right after: errors counted since the last call are added to it (added, not set, so the
   * library's own counts and `srv.reset()` keep their meaning). Returns no `data`.
   */
  readonly statsHandler = (ep: Endpoint): Promise<unknown> => {
    const e = ep as Endpoint & { name?: string; stats?: { num_errors?: unknown; last_error?: string } };
    const p = e.name !== undefined ? this.pending.get(e.name) : undefined;
    if (p && e.stats && typeof e.stats.num_errors === 'number') {
      e.stats.num_errors += p.count;
      e.stats.last_error = p.last;
      this.pending.delete(e.name!);
    }
    return Promise.resolve(undefined);
  };
}

const errorsByService = new WeakMap<Service, EndpointErrors>();

/** A micro service whose error answers are counted in `$SRV.STATS` (EndpointErrors): the way every service here is made. */
export async function addService(nc: NatsConnection, config: Omit<ServiceConfig, 'statsHandler'>, errors = new EndpointErrors()): Promise<{ srv: Service; errors: EndpointErrors }> {
  const srv = await nc.services.add({ ...config, statsHandler: errors.statsHandler });
  errorsByService.set(srv, errors);
  return { srv, errors };
}

/** The error counts of a service made by addService (undefined for one made otherwise: its errors go uncounted). */
export function errorsOf(srv: Service): EndpointErrors | undefined {
  return errorsByService.get(srv);
}

export function respondWithError(msg: ServiceMsg, err: InfaasError): void {
  // The micro protocol's headers carry a numeric status and a description; the body carries our code.
  msg.respondError(err.status, err.headerText, encodeJson(err.toBody()));
}

/**
 * Adds an endpoint whose handler can never leave a caller waiting: every path ends in one respond
 * or one respondError (an async throw in a micro handler would otherwise surface only as a timeout).
 */
export function addJsonEndpoint<S extends TSchema>(srv: Service, ep: JsonEndpoint<S>, log: Logger): void {
  const errors = errorsOf(srv);
  srv.addEndpoint(ep.name, {
    subject: ep.subject,
    handler: (err, msg) => {
      if (err) {
        log.error({ err, endpoint: ep.name }, 'endpoint stopped');
        return;
      }
      void (async () => {
        try {
          const body = msg.data.length === 0 ? {} : decodeJson(msg.data);
          const request = validate(ep.schema, body, `${ep.name} request`);
          const reply = await ep.handle(request, msg);
          msg.respond(encodeJson(reply));
        } catch (e) {
          const ie = toInfaasError(e);
          if (ie.code === 'INTERNAL') log.error({ err: e, endpoint: ep.name }, 'endpoint failed');
          else log.debug({ code: ie.code, endpoint: ep.name, message: ie.message }, 'request refused');
          respondWithError(msg, ie);
          if (msg.reply) errors?.count(ep.name, ie);
        }
      })();
    },
  });
}

/**
 * Stops a service (its endpoints unsubscribe and flush), waiting at most `timeoutMs`: while the
 * server is gone the flush waits on a PONG that does not come, and a stopping process must not.
 */
export async function stopService(srv: Service, log: Logger, timeoutMs = 2_000): Promise<boolean> {
  const r = await settleWithin(srv.stop(), timeoutMs);
  if (!r.settled) log.warn({ service: srv.info().name, timeoutMs }, 'service stop not confirmed by the server in time (is it gone?): going on');
  return r.settled;
}

export interface ServiceInstance { id: string; metadata: Record<string, string> }

/**
 * The instances of a micro service answering a PING now (all replies within `waitMs`): how
 * actors tell a live owner of a claim from one that died.
 */
export async function pingInstances(nc: NatsConnection, service: string, waitMs = 500): Promise<ServiceInstance[]> {
  const out: ServiceInstance[] = [];
  const replies = await nc.requestMany(`$SRV.PING.${service}`, new Uint8Array(), { maxWait: waitMs, strategy: RequestStrategy.Timer });
  try {
    for await (const m of replies) {
      const r = decodeJson(m.data) as { id?: unknown; metadata?: unknown };
      if (typeof r.id === 'string') out.push({ id: r.id, metadata: (r.metadata ?? {}) as Record<string, string> });
    }
  } catch (err) {
    // No responders (503) means no instance is running: an empty answer, not a failure.
    if ((err as { code?: string }).code !== '503') throw err;
  }
  return out;
}
