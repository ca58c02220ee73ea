// The variant-instance actor's public door: lifecycle, batching policy, input checks and the host.
export { instanceMachine, type InstanceContext, type InstanceEvent, type InstanceInput } from './machine.js';
export {
  BATCHING_MODES, BATCH_OVERHEAD_MS, aimdInitial, aimdUpdate, capacityQps, decideBatch, defaultAimdSettings, latencyCurve,
  type AimdSettings, type AimdState, type BatchDecision, type BatchingInput, type BatchingMode,
} from './batching.js';
export {
  latencyModel, predictLatencyMs, roundElements, sampleElements, sizeBlend, sizedLatencyCurve, stepLatencyMs,
  type LatencyPoints, type LatencyProfile, type Shaped, type SizeBlend, type SizedPoints,
} from './latency.js';
export { checkInputs, concatBatch, splitOutputs, zeroInputs, type CheckedInputs } from './inputs.js';
export { batchKey, canShareRun, pickBatch, type PickOptions } from './batch-key.js';
export { VariantInstance, stateName, type InstanceDeps } from './host.js';
export {
  SESSION_START_MS, defaultInstanceOptions,
  type InstanceOptions, type InstanceSession, type InstanceSpec, type InstanceWindow, type Outcome, type QueuedQuery,
} from './spec.js';
