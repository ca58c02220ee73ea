// The dispatcher's public door: the selection policy (the host comes with #4).
export {
  selectVariant, latencyFor, costPerQuery,
  type CandidateProfile, type WorkerView, type InstanceView, type InstanceState, type Snapshot, type SelectionRequest, type Selection,
} from './select-variant.js';
