// `infaas bench` defaults, apart from the load generator: the CLI's help prints them at start-up.
export const benchDefaults = { durationS: 10, warmupS: 2, windowS: 1, latencyMs: 100, seed: 1, retry: true } as const;
