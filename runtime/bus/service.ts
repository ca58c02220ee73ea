// NATS micro-service endpoints with a JSON control plane: decode, validate, handle, answer or respondError.
import type { TSchema, Static } from '@sinclair/typebox';
import { RequestStrategy, type NatsConnection, type Service, type ServiceMsg } from 'nats';
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

export function respondWithError(msg: ServiceMsg, err: InfaasError): void {
  // The micro protocol's headers carry a numeric status and a description; the body carries our code.
  msg.respondError(err.status, err.headerText, encodeJson(err.toBody()));
}

/**
 * Adds an endpoint whose handler can never leave a caller waiting: every path ends in one respond
 * or one respondError (an async throw in a micro handler would otherwise surface only as a timeout).
 */
export function addJsonEndpoint<S extends TSchema>(srv: Service, ep: JsonEndpoint<S>, log: Logger): void {
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
