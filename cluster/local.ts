// Composition roots: connect to (or embed) NATS and start the controller and worker actors.
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { startProfiler, type Profiler, type ProfilerConfig } from '../actors/profiler/index.js';
import { startRegistrar, type Registrar } from '../actors/registrar/index.js';
import { startDispatcher, type Dispatcher } from '../actors/dispatcher/index.js';
import { startWorker, type Worker, type WorkerConfig } from '../actors/worker/index.js';
import { startLocalNats, type LocalNats } from '../runtime/bus/local-nats.js';
import type { Logger } from '../runtime/log.js';
import { closeBus, connectBus } from '../runtime/bus/nats.js';
import { openStores, type Stores } from '../runtime/bus/store.js';

export interface Stack {
  url: string;
  nc: NatsConnection;
  stores: Stores;
  registrar?: Registrar;
  dispatcher?: Dispatcher;
  profiler?: Profiler;
  worker?: Worker;
  server?: LocalNats;
  stop(): Promise<void>;
}

export interface StackOptions {
  log: Logger;
  /** Connect here; when absent, start (or reuse) the embedded server in dataDir. */
  natsUrl?: string;
  dataDir: string;
  port?: number;
  controller: boolean;
  worker: boolean;
  profiler?: Omit<ProfilerConfig, 'nc' | 'stores' | 'log'>;
  /** Serving side of a worker (instances, monitor, autoscaler); shares the profiler's id and class. */
  serving?: Omit<WorkerConfig, 'nc' | 'stores' | 'log' | 'workerId' | 'hardwareClass' | 'threads'>;
  name?: string;
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const server = o.natsUrl ? undefined : await startLocalNats({ storeDir: join(o.dataDir, 'nats'), port: o.port, log: o.log });
  const url = o.natsUrl ?? server!.url;
  const nc = await connectBus({ servers: url, name: o.name ?? 'infaas', log: o.log });
  const stores = await openStores(nc);
  const registrar = o.controller ? await startRegistrar({ nc, stores, log: o.log }) : undefined;
  const dispatcher = o.controller ? await startDispatcher({ nc, stores, log: o.log, controllerId: registrar!.id }) : undefined;
  const profiler = o.worker ? await startProfiler({ nc, stores, log: o.log, ...o.profiler }) : undefined;
  const worker = profiler ? await startWorker({
    nc, stores, log: o.log, ...o.serving, workerId: profiler.workerId, hardwareClass: profiler.hardwareClass, threads: o.profiler?.threads,
  }) : undefined;
  if (dispatcher && worker) dispatcher.attachLocal(worker.id, worker.accept);
  return {
    url, nc, stores, registrar, dispatcher, profiler, worker, server,
    stop: async () => {
      await worker?.stop();
      await profiler?.stop();
      await dispatcher?.stop();
      await registrar?.stop();
      await closeBus(nc);
      await server?.stop();
    },
  };
}
