// The model-autoscaler's public door: the per-worker scaling policy (its host lives beside it).
export {
  planWorkerScaling, defaultScalingSettings, initialScalingState,
  type ScalingAction, type ScalingInstance, type ScalingSettings, type ScalingState, type ScalingVariant, type WorkerScalingSnapshot,
} from './plan.js';
export { autoscalerMachine, type AutoscalerEvent } from './machine.js';
