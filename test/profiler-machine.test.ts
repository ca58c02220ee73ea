// Pure tests of the profiler queue: one run at a time, no duplicates, failures do not stop it.
import t from 'tap';
import { createActor, fromPromise, waitFor } from 'xstate';
import { profilerMachine } from '../actors/profiler/machine.js';
import type { ProfileGroup } from '../actors/profiler/plan.js';

const group = (key: string): ProfileGroup => ({ key, model: 'm', variants: [], maxBatch: 1 });

t.test('runs queued groups one at a time, skipping duplicates, surviving failures', async (t) => {
  const started: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const release: (() => void)[] = [];
  const failures: string[] = [];
  const machine = profilerMachine.provide({
    actors: {
      profileGroup: fromPromise(async ({ input }: { input: { group: ProfileGroup } }) => {
        started.push(input.group.key);
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise<void>((r) => release.push(r));
        running--;
        if (input.group.key === 'b') throw new Error('cannot load');
        return { profiled: 1, skipped: 0 };
      }) as never,
    },
    actions: { recordFailure: (_, p) => { failures.push(p.group.key); } },
  });
  const actor = createActor(machine).start();
  actor.send({ type: 'work.found', groups: [group('a'), group('b')] });
  actor.send({ type: 'work.found', groups: [group('a'), group('b'), group('c')] });
  t.same(actor.getSnapshot().context.queue.map((g) => g.key), ['b', 'c'], 'a is running; b and c queued once');
  while (started.length < 3 || release.length > 0) {
    await waitFor(actor, () => release.length > 0);
    release.shift()!();
    await new Promise((r) => setImmediate(r));
  }
  const s = await waitFor(actor, (x) => x.value === 'idle' && x.context.queue.length === 0 && !x.context.current);
  t.same(started, ['a', 'b', 'c']);
  t.equal(maxRunning, 1);
  t.same(failures, ['b']);
  t.equal(s.context.completed, 2);
  t.equal(s.context.failed, 1);
});
