// The monitor's lifecycle: sample once per window until stopped. The host supplies the sampling
// action (process CPU and memory, per-instance queues and latencies, classification, KV stats).
import { setup } from 'xstate';

export type MonitorEvent = { type: 'stop.requested' };

export const monitorMachine = setup({
  types: { events: {} as MonitorEvent },
  actions: { sample: () => {} },
  delays: { window: 1000 },
}).createMachine({
  id: 'monitor',
  initial: 'sampling',
  states: {
    sampling: {
      after: { window: { target: 'sampling', reenter: true, actions: 'sample' } },
      on: { 'stop.requested': 'stopped' },
    },
    stopped: { type: 'final' },
  },
});
