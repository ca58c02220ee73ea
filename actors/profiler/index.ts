// The profiler / variant generator actor's public door.
export { profilerMachine, type ProfilerContext, type ProfilerEvent } from './machine.js';
export { startProfiler, type Profiler, type ProfilerConfig } from './host.js';
export { generateVariants, profilerActors, type ProfilerDeps } from './effects.js';
export { planVariants, groupForProfiling, allowedBatches, variantSuffix, defaultGeneratorOptions, type GeneratorOptions, type ProfileGroup } from './plan.js';
