// The worker-side profiler's lifecycle: a queue of profiling runs, one at a time (profiles taken in
// parallel on the same cores would measure each other). No I/O imports; effects are provided.
import { assign, fromPromise, setup } from 'xstate';
import type { ProfileGroup } from './plan.js';

export interface ProfilerContext {
  queue: ProfileGroup[];
  current?: ProfileGroup;
  completed: number;
  failed: number;
}

export type ProfilerEvent =
  | { type: 'work.found'; groups: ProfileGroup[] }
  | { type: 'stop.requested' };

export interface GroupOutcome { profiled: number; skipped: number }

export const profilerMachine = setup({
  types: {
    context: {} as ProfilerContext,
    events: {} as ProfilerEvent,
  },
  actors: {
    profileGroup: fromPromise<GroupOutcome, { group: ProfileGroup }>(async () => { throw new Error('profileGroup not provided'); }),
  },
  guards: {
    hasWork: ({ context }) => context.queue.length > 0,
  },
  actions: {
    enqueue: assign({
      queue: ({ context, event }) => {
        if (event.type !== 'work.found') return context.queue;
        const seen = new Set([...context.queue.map((g) => g.key), context.current?.key]);
        return [...context.queue, ...event.groups.filter((g) => !seen.has(g.key))];
      },
    }),
    takeNext: assign({ current: ({ context }) => context.queue[0], queue: ({ context }) => context.queue.slice(1) }),
    recordFailure: (_, _params: { group: ProfileGroup; error: unknown }) => {},
  },
}).createMachine({
  id: 'profiler',
  context: { queue: [], completed: 0, failed: 0 },
  initial: 'idle',
  on: { 'stop.requested': '.stopped' },
  states: {
    idle: {
      always: { guard: 'hasWork', target: 'profiling' },
      on: { 'work.found': { actions: 'enqueue', target: 'idle', reenter: true } },
    },
    profiling: {
      entry: 'takeNext',
      on: { 'work.found': { actions: 'enqueue' } },
      invoke: {
        src: 'profileGroup',
        input: ({ context }) => ({ group: context.current! }),
        onDone: { target: 'idle', actions: assign({ completed: ({ context }) => context.completed + 1, current: undefined }) },
        onError: {
          target: 'idle',
          actions: [
            { type: 'recordFailure', params: ({ context, event }) => ({ group: context.current!, error: event.error }) },
            assign({ failed: ({ context }) => context.failed + 1, current: undefined }),
          ],
        },
      },
    },
    stopped: { type: 'final' },
  },
});
