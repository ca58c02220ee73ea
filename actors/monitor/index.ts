// The monitor's public door: the classification policy (the sampling host comes with #3).
export {
  classifyInstance, defaultThresholds, initialClassifierState, slowdown,
  type ClassifierState, type ClassifierThresholds, type Classification, type InstanceSample, type Verdict,
} from './classify.js';
