// The worker's public door: start one (KV record, micro service, instances, monitor, autoscaler).
export { startWorker, PRICE_PER_THREAD_HOUR, type Worker, type WorkerConfig } from './host.js';
export { workerMachine, type WorkerContext, type WorkerEvent as WorkerMachineEvent } from './machine.js';
export { defaultInferenceOptions, type InferenceOptions } from './inference.js';
