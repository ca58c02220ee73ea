// The variant-instance actor's public door (lifecycle and batching policy; the host comes with #3).
export { instanceMachine, type InstanceContext, type InstanceEvent, type InstanceInput } from './machine.js';
export { decideBatch, latencyCurve, type BatchDecision, type BatchingInput } from './batching.js';
