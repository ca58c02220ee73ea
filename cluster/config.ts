// Process configuration from the environment: the only place that reads env vars.
import { resolve } from 'node:path';

export interface EnvConfig {
  natsUrl?: string;
  dataDir: string;
  logLevel: string;
  hardwareClass?: string;
  workerId?: string;
  natsPort: number;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): EnvConfig {
  return {
    natsUrl: env.INFAAS_NATS_URL || undefined,
    dataDir: resolve(env.INFAAS_DATA_DIR || '.infaas'),
    logLevel: env.INFAAS_LOG_LEVEL || 'warn',
    hardwareClass: env.INFAAS_HARDWARE_CLASS || undefined,
    workerId: env.INFAAS_WORKER_ID || undefined,
    natsPort: Number(env.INFAAS_NATS_PORT || 4222),
  };
}
