// Test harness: a real nats-server per test file (random port, temp store) and the real actors.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { startProfiler, type Profiler, type ProfilerConfig } from '../../actors/profiler/index.js';
import { startRegistrar, type Registrar, type RegistrarConfig } from '../../actors/registrar/index.js';
import { startWorker, type Worker, type WorkerConfig } from '../../actors/worker/index.js';
import { RegistryClient } from '../../runtime/client/registry-client.js';
import { startLocalNats, type LocalNats, type LocalNatsOptions } from '../../runtime/bus/local-nats.js';
import { silentLogger } from '../../runtime/log.js';
import { closeBus, connectBus } from '../../runtime/bus/nats.js';
import { openStores, type Stores } from '../../runtime/bus/store.js';
import { QueryClient } from '../../runtime/client/query-client.js';
import { arrayToTensor } from '../../runtime/bus/codec.js';
import { loadSplit } from '../../zoo/data.js';
import { ZOO_TASK } from '../../zoo/index.js';

interface Teardown { teardown(fn: () => unknown): void }

/** Without options, a server that checks no credentials; `auth` turns access control on (test/access-control.test.ts). */
export async function startTestNats(t: Teardown, options: Pick<LocalNatsOptions, 'auth' | 'tls' | 'maxPayload'> = {}): Promise<LocalNats> {
  const dir = mkdtempSync(join(tmpdir(), 'infaas-test-'));
  const server = await startLocalNats({ storeDir: dir, port: -1, log: silentLogger, install: false, ...options });
  t.teardown(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

export async function connectTest(t: Teardown, url: string, name = 'test', extra?: Partial<ConnectionOptions>): Promise<{ nc: NatsConnection; stores: Stores }> {
  const nc = await connectBus({ servers: url, name, log: silentLogger, ...(extra ? { extra } : {}) });
  t.teardown(() => closeBus(nc));
  return { nc, stores: await openStores(nc) };
}

/** Fast profiling for tests: few runs, few validation samples, a small variant grid. */
export const fastProfiler: Omit<ProfilerConfig, 'nc' | 'stores' | 'log'> = {
  measure: { minRuns: 5, minTimeMs: 5, maxRuns: 50, warmupRuns: 2, warmupMs: 0, maxValidationSamples: 300 },
  generator: { precisions: ['fp32', 'int8'], optLevels: ['all'], maxBatches: [1, 8], threads: [1], providers: ['cpu'] },
  hardwareClass: 'cpu-test',
  threads: 1,
};

export interface TestSystem {
  url: string;
  nc: NatsConnection;
  stores: Stores;
  registrar: Registrar;
  profiler: Profiler;
  client: RegistryClient;
}

export async function startTestSystem(t: Teardown, profiler: Partial<typeof fastProfiler> = {}, registrarOptions: RegistrarConfig['options'] = {}): Promise<TestSystem> {
  const server = await startTestNats(t);
  const { nc, stores } = await connectTest(t, server.url);
  const registrar = await startRegistrar({ nc, stores, log: silentLogger, options: registrarOptions });
  const prof = await startProfiler({ nc, stores, log: silentLogger, ...fastProfiler, ...profiler });
  t.teardown(async () => { await prof.stop(); await registrar.stop(); });
  return { url: server.url, nc, stores, registrar, profiler: prof, client: new RegistryClient(nc, stores) };
}

/** A worker serving for the test system's hardware class (profiles exist for it); autoscaling off unless asked. */
export async function startTestWorker(t: Teardown, sys: { nc: NatsConnection; stores: Stores }, config: Partial<WorkerConfig> = {}): Promise<Worker> {
  const worker = await startWorker({
    nc: sys.nc, stores: sys.stores, log: silentLogger, hardwareClass: fastProfiler.hardwareClass, threads: 2, autoscale: false, ...config,
  });
  t.teardown(() => worker.stop());
  return worker;
}

/**
 * Resolves once a zoo digit query for the task is answered (the dispatcher learns of workers from
 * KV, and the first query may load a variant); throws the last error after `tries` attempts 100 ms apart.
 */
export async function untilServing(nc: NatsConnection, latencyMs: number, tries = 100): Promise<void> {
  const { images } = loadSplit('validation', 1);
  const qc = new QueryClient(nc);
  for (let i = 0; ; i++) {
    try {
      await qc.query({ task: ZOO_TASK, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], images) }, slo: { latencyMs } });
      return;
    } catch (err) {
      if (i >= tries) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
