// NATS connection handling: named clients, endless reconnect, status logging, drain on shutdown.
import { connect, type NatsConnection, type ConnectionOptions } from 'nats';
import type { Logger } from '../log.js';

export interface BusOptions {
  servers: string | string[];
  /** Client name shown by the server (`nats server report connections`). */
  name: string;
  log: Logger;
  /** Extra nats.js options (credentials, TLS) for clusters. */
  extra?: Partial<ConnectionOptions>;
}

export async function connectBus(options: BusOptions): Promise<NatsConnection> {
  const nc = await connect({
    servers: options.servers,
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
    ...options.extra,
  });
  const log = options.log.child({ nats: options.name });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'pingTimer') continue;
      const level = s.type === 'error' || s.type === 'disconnect' ? 'warn' : 'debug';
      log[level]({ status: s.type, data: String(s.data) }, 'nats connection status');
    }
  })();
  return nc;
}

/** Drains (finishes in-flight handlers, flushes publishes) and waits for the close. */
export async function closeBus(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) return;
  try {
    await nc.drain();
  } catch {
    await nc.close();
  }
}
