// The monitor's public door: the classification policy, the sampling step and its lifecycle.
export {
  classifyInstance, defaultThresholds, initialClassifierState, slowdown,
  type ClassifierState, type ClassifierThresholds, type Classification, type InstanceSample, type Verdict,
} from './classify.js';
export { InstanceSampler, CpuSampler, defaultMonitorOptions, type MonitorOptions, type Verdicts, type DeadlineMisses } from './sampler.js';
export { monitorMachine, type MonitorEvent } from './machine.js';
