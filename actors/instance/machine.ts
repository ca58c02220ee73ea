// Lifecycle of one variant instance (one ONNX Runtime session): loading -> active <-> overloaded /
// interfered -> draining -> unloaded, or failed. Monitor verdicts and drain requests drive it.
// Groundwork for the worker issue: the host (batching, serving) arrives with it.
import { assign, fromPromise, setup } from 'xstate';
import type { Verdict } from '../monitor/classify.js';

export interface InstanceInput { instanceId: string; variantId: string }

// Queries are counted by the host, not here: an event per query cost two transitions on the hot
// path. The host says whether a drain finds the instance idle, and when a drain has emptied it.
export interface InstanceContext extends InstanceInput {
  /** The monitor's latest verdict; mirrors the serving sub-state. */
  verdict: Verdict;
  error?: string;
  reason?: string;
}

export type InstanceEvent =
  | { type: 'monitor.verdict'; verdict: Verdict; reason: string }
  | { type: 'drain.requested'; idle: boolean }
  | { type: 'queries.drained' }
  | { type: 'instance.crashed'; error: string };

export const instanceMachine = setup({
  types: {
    context: {} as InstanceContext,
    input: {} as InstanceInput,
    events: {} as InstanceEvent,
  },
  actors: {
    loadSession: fromPromise<void, InstanceInput>(async () => { throw new Error('loadSession not provided'); }),
    releaseSession: fromPromise<void, InstanceInput>(async () => { throw new Error('releaseSession not provided'); }),
  },
  guards: {
    isIdle: ({ event }) => event.type === 'drain.requested' && event.idle,
    /** The monitor says `verdict`, and that is a change (a repeated verdict re-enters nothing). */
    saysNew: ({ context, event }, params: { verdict: Verdict }) =>
      event.type === 'monitor.verdict' && event.verdict === params.verdict && context.verdict !== params.verdict,
  },
  actions: {
    recordVerdict: assign(({ context, event }) => (event.type === 'monitor.verdict' ? { verdict: event.verdict, reason: event.reason } : context)),
    recordCrash: assign({ error: ({ event }) => (event.type === 'instance.crashed' ? event.error : undefined) }),
    /** Tells the world (KV, events subject) about the new state; provided by the host. */
    publishState: () => {},
  },
}).createMachine({
  id: 'instance',
  context: ({ input }) => ({ ...input, verdict: 'active' as Verdict }),
  initial: 'loading',
  states: {
    loading: {
      entry: 'publishState',
      invoke: {
        src: 'loadSession',
        input: ({ context }) => ({ instanceId: context.instanceId, variantId: context.variantId }),
        onDone: 'serving',
        onError: { target: 'failed', actions: assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }) },
      },
      // A drain ends the load: leaving the state aborts loadSession's signal, which closes a
      // half-opened session; queries waiting for it are answered by the host.
      on: { 'drain.requested': 'unloading' },
    },
    serving: {
      initial: 'active',
      on: {
        'drain.requested': [{ guard: 'isIdle', target: 'unloading' }, { target: 'draining' }],
        'instance.crashed': { target: 'failed', actions: 'recordCrash' },
        'monitor.verdict': (['active', 'overloaded', 'interfered'] as const).map((verdict) => ({
          guard: { type: 'saysNew' as const, params: { verdict } }, target: `.${verdict}`, actions: 'recordVerdict' as const,
        })),
      },
      states: {
        active: { entry: 'publishState' },
        overloaded: { entry: 'publishState' },
        interfered: { entry: 'publishState' },
      },
    },
    draining: {
      entry: 'publishState',
      on: {
        'queries.drained': 'unloading',
        'instance.crashed': { target: 'failed', actions: 'recordCrash' },
      },
    },
    unloading: {
      invoke: {
        src: 'releaseSession',
        input: ({ context }) => ({ instanceId: context.instanceId, variantId: context.variantId }),
        onDone: 'unloaded',
        onError: { target: 'failed', actions: assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }) },
      },
    },
    unloaded: { type: 'final', entry: 'publishState' },
    failed: { type: 'final', entry: 'publishState' },
  },
});
