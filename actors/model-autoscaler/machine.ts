// The model-autoscaler's lifecycle: wait for the monitor's window, then plan (pure policy in
// plan.ts) and carry the plan out; windows that arrive while acting are skipped, not queued.
import { assign, fromPromise, setup } from 'xstate';

export type AutoscalerEvent = { type: 'stats.sampled' } | { type: 'stop.requested' };

export const autoscalerMachine = setup({
  types: { context: {} as { rounds: number; error?: string }, events: {} as AutoscalerEvent },
  actors: {
    planAndAct: fromPromise<void>(async () => { throw new Error('planAndAct not provided'); }),
  },
  actions: { reportError: () => {} },
}).createMachine({
  id: 'model-autoscaler',
  context: { rounds: 0 },
  initial: 'watching',
  states: {
    watching: {
      on: { 'stats.sampled': 'acting', 'stop.requested': 'stopped' },
    },
    acting: {
      invoke: {
        src: 'planAndAct',
        onDone: { target: 'watching', actions: assign({ rounds: ({ context }) => context.rounds + 1 }) },
        onError: {
          target: 'watching',
          actions: [assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }), 'reportError'],
        },
      },
      on: { 'stop.requested': 'stopped' },
    },
    stopped: { type: 'final' },
  },
});
