// The dispatcher's public door: the selection policy, its snapshot and the infaas.query host.
export {
  selectVariant, selectVariantScan, indexSnapshot, latencyFor, costPerQuery, type SnapshotIndex,
  type CandidateProfile, type WorkerView, type InstanceView, type InstanceState, type Snapshot, type SelectionRequest, type Selection,
} from './select-variant.js';
export { SnapshotBuilder } from './snapshot.js';
export { dispatcherMachine, type DispatcherEvent } from './machine.js';
export { startDispatcher, defaultDispatcherOptions, type Dispatcher, type DispatcherConfig, type DispatcherOptions, type SelectionPolicy } from './host.js';
export {
  fixedVariant, fastestVariant, cheapestVariant, defaultFixedChoice, policies, policyNames, policyNamed, policyWorkers, workersFor,
  type FixedChoice, type PolicyWorkers,
} from './baselines.js';
