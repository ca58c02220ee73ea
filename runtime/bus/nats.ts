// NATS connection handling: named clients, endless reconnect, status logging, drain on shutdown.
import { connect, type NatsConnection, type ConnectionOptions } from 'nats';
import type { Logger } from '../log.js';
import { settleWithin } from '../stopping.js';
import { authenticationRefused } from './auth.js';

export interface BusOptions {
  servers: string | string[];
  /** Client name shown by the server (`nats server report connections`). */
  name: string;
  log: Logger;
  /** Extra nats.js options (credentials, TLS; runtime/bus/auth.ts resolveAccess builds them). */
  extra?: Partial<ConnectionOptions>;
  /** Who `extra` presents, for the error when the server refuses it (never the secret). */
  who?: string;
}

export async function connectBus(options: BusOptions): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    // "nats://a:4222,nats://b:4222" (as -s and INFAAS_NATS_URL take it) is a list in the order
    // given: a deployment puts the process's own host's node first (cluster/deploy.ts); the rest,
    // and the nodes the server tells about, are where it reconnects when that node goes.
    const servers = typeof options.servers === 'string' ? options.servers.split(',').map((s) => s.trim()).filter(Boolean) : options.servers;
    nc = await connect({
      servers,
      ...(servers.length > 1 ? { noRandomize: true } : {}),
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 10_000,
      ...options.extra,
    });
  } catch (err) {
    throw authenticationRefused(err, String(options.servers), options.who ?? (options.extra?.user ? `user "${options.extra.user}"` : 'anonymous')) ?? err;
  }
  const log = options.log.child({ nats: options.name });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'pingTimer') continue;
      const level = s.type === 'error' || s.type === 'disconnect' ? 'warn' : 'debug';
      // A permissions violation names the operation and subject the server refused.
      log[level]({ status: s.type, data: String(s.data), ...(s.permissionContext ? { denied: s.permissionContext } : {}) }, 'nats connection status');
    }
  })();
  return nc;
}

/**
 * Drains (finishes in-flight handlers, flushes publishes) for at most `timeoutMs`, and always ends
 * with the connection closed; false when it closed without a complete drain (unflushed publishes
 * lost). With the server gone a drain waits on a PONG that only a reconnect attempt rejects.
 */
export async function closeBus(nc: NatsConnection, timeoutMs = 2_000): Promise<boolean> {
  if (nc.isClosed()) return true;
  const r = await settleWithin(nc.drain(), timeoutMs);
  // nats.js's drain resolves without closing when its final flush fails (the server is gone), and
  // the endless reconnect then kept a stopped process alive: close it here.
  const drained = r.settled && !('error' in r) && nc.isClosed();
  if (!nc.isClosed()) await settleWithin(nc.close(), 1_000);
  return drained;
}
