// Pure transitions of a worker's lifecycle, and its drain sequence with fake effects.
import t from 'tap';
import { createActor, fromPromise, initialTransition, transition, waitFor } from 'xstate';
import { workerMachine } from '../actors/worker/machine.js';

t.test('starts by announcing itself; a drain request moves ready to draining', async (t) => {
  const [s0] = initialTransition(workerMachine);
  t.equal(s0.value, 'starting');
  const ready = workerMachine.resolveState({ value: 'ready', context: {} });
  const [draining] = transition(workerMachine, ready, { type: 'drain.requested', reason: 'scale in' });
  t.equal(draining.value, 'draining');
  t.equal(draining.context.reason, 'scale in');
  const [again] = transition(workerMachine, draining, { type: 'drain.requested', reason: 'twice' });
  t.equal(again.value, 'draining', 'a second request changes nothing');
  t.equal(again.context.reason, 'scale in');
});

t.test('drains instances, then withdraws, then stops; a failed announce is a failure', async (t) => {
  const order: string[] = [];
  const m = workerMachine.provide({
    actors: {
      announce: fromPromise(async () => { order.push('announce'); }),
      drainInstances: fromPromise(async () => { order.push('drain'); }),
      withdraw: fromPromise(async () => { order.push('withdraw'); }),
    },
  });
  const actor = createActor(m).start();
  await waitFor(actor, (s) => s.value === 'ready');
  actor.send({ type: 'drain.requested', reason: 'test' });
  const end = await waitFor(actor, (s) => s.status === 'done');
  t.equal(end.value, 'stopped');
  t.same(order, ['announce', 'drain', 'withdraw']);

  const bad = createActor(workerMachine.provide({ actors: { announce: fromPromise<void>(async () => { throw new Error('KV unavailable'); }) } })).start();
  const failed = await waitFor(bad, (s) => s.status === 'done');
  t.equal(failed.value, 'failed');
  t.equal(failed.context.error, 'KV unavailable');
});

t.test('an instance failing to drain does not stop the worker from withdrawing', async (t) => {
  const m = workerMachine.provide({
    actors: {
      announce: fromPromise(async () => {}),
      drainInstances: fromPromise<void>(async () => { throw new Error('thread died'); }),
      withdraw: fromPromise(async () => {}),
    },
  });
  const actor = createActor(m).start();
  await waitFor(actor, (s) => s.value === 'ready');
  actor.send({ type: 'drain.requested', reason: 'test' });
  t.equal((await waitFor(actor, (s) => s.status === 'done')).value, 'stopped');
});
