// A worker's lifecycle: announcing itself (KV record, micro service) -> ready (serving, sampling,
// scaling) -> draining (refuse new queries, finish queued ones, unload) -> stopped, or failed.
import { assign, fromPromise, setup } from 'xstate';

export type WorkerEvent = { type: 'drain.requested'; reason: string };

export interface WorkerContext { reason?: string; error?: string }

export const workerMachine = setup({
  types: { context: {} as WorkerContext, events: {} as WorkerEvent },
  actors: {
    announce: fromPromise<void>(async () => { throw new Error('announce not provided'); }),
    drainInstances: fromPromise<void>(async () => { throw new Error('drainInstances not provided'); }),
    withdraw: fromPromise<void>(async () => { throw new Error('withdraw not provided'); }),
  },
  actions: {
    /**
     * Rewrites the worker's KV record and publishes a lifecycle event; provided by the host. The
     * state comes as a parameter: inside an entry action the actor's snapshot is still the old one.
     */
    publishState: (_, _params: { state: 'ready' | 'draining' | 'stopped' | 'failed' }) => {},
  },
}).createMachine({
  id: 'worker',
  context: {},
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        src: 'announce',
        onDone: 'ready',
        onError: { target: 'failed', actions: assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }) },
      },
    },
    ready: {
      entry: { type: 'publishState', params: { state: 'ready' } },
      on: { 'drain.requested': { target: 'draining', actions: assign({ reason: ({ event }) => event.reason }) } },
    },
    draining: {
      entry: { type: 'publishState', params: { state: 'draining' } },
      invoke: {
        src: 'drainInstances',
        onDone: 'withdrawing',
        // An instance that fails while draining is already answered and gone: carry on.
        onError: 'withdrawing',
      },
    },
    withdrawing: {
      invoke: { src: 'withdraw', onDone: 'stopped', onError: 'stopped' },
    },
    stopped: { type: 'final', entry: { type: 'publishState', params: { state: 'stopped' } } },
    failed: { type: 'final', entry: { type: 'publishState', params: { state: 'failed' } } },
  },
});
