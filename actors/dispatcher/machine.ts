// The dispatcher's lifecycle: starting (views loaded from KV, endpoint added) -> serving ->
// stopping -> stopped, or failed when it cannot start.
import { assign, fromPromise, setup } from 'xstate';

export type DispatcherEvent = { type: 'stop.requested' };

export const dispatcherMachine = setup({
  types: { context: {} as { error?: string }, events: {} as DispatcherEvent },
  actors: {
    start: fromPromise<void>(async () => { throw new Error('start not provided'); }),
    stop: fromPromise<void>(async () => { throw new Error('stop not provided'); }),
  },
}).createMachine({
  id: 'dispatcher',
  context: {},
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        src: 'start',
        onDone: 'serving',
        onError: { target: 'failed', actions: assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }) },
      },
    },
    serving: { on: { 'stop.requested': 'stopping' } },
    stopping: { invoke: { src: 'stop', onDone: 'stopped', onError: 'stopped' } },
    stopped: { type: 'final' },
    failed: { type: 'final' },
  },
});
