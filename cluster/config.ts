// Process configuration from the environment: the only place that reads env vars.
import { resolve } from 'node:path';
import type { NatsAccess } from '../runtime/bus/auth.js';

export interface EnvConfig {
  natsUrl?: string;
  dataDir: string;
  logLevel: string;
  hardwareClass?: string;
  workerId?: string;
  natsPort: number;
  /** Credentials and TLS trust for connecting (docs/security.md); unset: the data directory's, on loopback. */
  access: NatsAccess;
  /** The embedded server checks credentials unless INFAAS_NATS_AUTH=off. */
  natsAuth: boolean;
  /** The embedded server serves TLS with this certificate and key. */
  natsTls?: { certFile: string; keyFile: string };
  /** JetStream replicas of the buckets this process creates (INFAAS_REPLICAS; 3 on a 3-node cluster, set by `infaas deploy`). */
  replicas?: number;
}

const path = (v: string | undefined) => (v ? resolve(v) : undefined);

export function readEnv(env: NodeJS.ProcessEnv = process.env): EnvConfig {
  return {
    natsUrl: env.INFAAS_NATS_URL || undefined,
    dataDir: resolve(env.INFAAS_DATA_DIR || '.infaas'),
    logLevel: env.INFAAS_LOG_LEVEL || 'warn',
    hardwareClass: env.INFAAS_HARDWARE_CLASS || undefined,
    workerId: env.INFAAS_WORKER_ID || undefined,
    natsPort: Number(env.INFAAS_NATS_PORT || 4222),
    access: {
      credentials: path(env.INFAAS_NATS_CREDENTIALS),
      user: env.INFAAS_NATS_USER || undefined,
      password: env.INFAAS_NATS_PASSWORD || undefined,
      inboxPrefix: env.INFAAS_NATS_INBOX_PREFIX || undefined,
      tls: { caFile: path(env.INFAAS_NATS_TLS_CA), certFile: path(env.INFAAS_NATS_TLS_CLIENT_CERT), keyFile: path(env.INFAAS_NATS_TLS_CLIENT_KEY) },
    },
    natsAuth: !/^(0|off|false|no)$/i.test(env.INFAAS_NATS_AUTH ?? ''),
    ...(/^[1-5]$/.test(env.INFAAS_REPLICAS ?? '') ? { replicas: Number(env.INFAAS_REPLICAS) } : {}),
    ...(env.INFAAS_NATS_TLS_CERT && env.INFAAS_NATS_TLS_KEY
      ? { natsTls: { certFile: resolve(env.INFAAS_NATS_TLS_CERT), keyFile: resolve(env.INFAAS_NATS_TLS_KEY) } } : {}),
  };
}
