// The VM-autoscaler's public door: the cluster scaling policy, its lifecycle and its host.
export {
  planClusterScaling, defaultClusterScalingSettings, initialClusterScalingState,
  type ClusterScalingAction, type ClusterScalingSettings, type ClusterScalingState, type ClusterSnapshot, type ClusterWorker,
} from './plan.js';
export { vmAutoscalerMachine, type VmAutoscalerEvent } from './machine.js';
export { startVmAutoscaler, type VmAutoscaler, type VmAutoscalerConfig, type WorkerProvisioner } from './host.js';
