// The profiler / variant generator actor's public door.
export { profilerMachine, type ProfilerContext, type ProfilerEvent } from './machine.js';
export { startProfiler, type Profiler, type ProfilerConfig } from './host.js';
export { profilerActors, type ProfilerDeps } from './effects.js';
export { generateVariants, calibrationFeeds, type GeneratedVariants } from './generate.js';
export { planVariants, groupForProfiling, allowedBatches, variantSuffix, defaultGeneratorOptions, STATIC_INT8_OPT_LEVEL, type GeneratorOptions, type ProfileGroup } from './plan.js';
