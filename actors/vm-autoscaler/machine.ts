// The VM-autoscaler's lifecycle: standby until it holds the controllers' lease, then leading: each
// tick plans (pure policy in plan.ts) and carries the plan out; losing the lease returns it to standby.
import { assign, fromPromise, setup } from 'xstate';

export type VmAutoscalerEvent =
  | { type: 'lease.acquired' } | { type: 'lease.lost' } | { type: 'tick' } | { type: 'stop.requested' };

export const vmAutoscalerMachine = setup({
  types: { context: {} as { rounds: number; error?: string }, events: {} as VmAutoscalerEvent },
  actors: { planAndAct: fromPromise<void>(async () => { throw new Error('planAndAct not provided'); }) },
  actions: { reportError: () => {}, announce: (_, _params: { role: 'leading' | 'standby' }) => {} },
}).createMachine({
  id: 'vm-autoscaler',
  context: { rounds: 0 },
  initial: 'standby',
  on: { 'stop.requested': '.stopped' },
  states: {
    standby: {
      entry: { type: 'announce', params: { role: 'standby' } },
      on: { 'lease.acquired': 'leading' },
    },
    leading: {
      entry: { type: 'announce', params: { role: 'leading' } },
      initial: 'idle',
      on: { 'lease.lost': 'standby' },
      states: {
        idle: { on: { tick: 'acting' } },
        acting: {
          invoke: {
            src: 'planAndAct',
            onDone: { target: 'idle', actions: assign({ rounds: ({ context }) => context.rounds + 1 }) },
            onError: { target: 'idle', actions: [assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }), 'reportError'] },
          },
        },
      },
    },
    stopped: { type: 'final' },
  },
});
