// The variant-instance actor's public door (lifecycle only so far; the worker host comes with #3).
export { instanceMachine, type InstanceContext, type InstanceEvent, type InstanceInput } from './machine.js';
