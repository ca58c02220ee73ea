// Pure transitions of the variant-instance lifecycle (no server, no ONNX Runtime).
import t from 'tap';
import { createActor, fromPromise, initialTransition, transition, waitFor } from 'xstate';
import { instanceMachine, type InstanceInput } from '../actors/instance/machine.js';

const input = { instanceId: 'i1', variantId: 'm.fp32-all-b8-t1-cpu' };
const loaded = instanceMachine.provide({ actors: { loadSession: fromPromise(async () => {}), releaseSession: fromPromise(async () => {}) } });

async function serving() {
  const actor = createActor(loaded, { input }).start();
  await waitFor(actor, (s) => s.matches({ serving: 'active' }));
  return actor;
}

t.test('starts loading; verdicts move it between active, overloaded and interfered', async (t) => {
  const [s0] = initialTransition(instanceMachine, input);
  t.equal(s0.value, 'loading');
  const actor = await serving();
  actor.send({ type: 'monitor.verdict', verdict: 'overloaded', reason: 'queue grows' });
  t.same(actor.getSnapshot().value, { serving: 'overloaded' });
  t.equal(actor.getSnapshot().context.reason, 'queue grows');
  actor.send({ type: 'monitor.verdict', verdict: 'interfered', reason: 'x2 latency' });
  t.same(actor.getSnapshot().value, { serving: 'interfered' });
  actor.send({ type: 'monitor.verdict', verdict: 'active', reason: 'ok' });
  t.same(actor.getSnapshot().value, { serving: 'active' });
});

t.test('a failed load ends in failed with the error', async (t) => {
  const m = instanceMachine.provide({ actors: { loadSession: fromPromise<void, InstanceInput>(async () => { throw new Error('bad file'); }) } });
  const actor = createActor(m, { input }).start();
  const s = await waitFor(actor, (x) => x.status === 'done');
  t.equal(s.value, 'failed');
  t.equal(s.context.error, 'bad file');
});

t.test('draining waits for in-flight queries, then unloads', async (t) => {
  const actor = await serving();
  actor.send({ type: 'query.accepted' });
  actor.send({ type: 'query.accepted' });
  actor.send({ type: 'drain.requested' });
  t.equal(actor.getSnapshot().value, 'draining');
  actor.send({ type: 'query.finished' });
  t.equal(actor.getSnapshot().value, 'draining', 'one query still in flight');
  actor.send({ type: 'query.finished' });
  const s = await waitFor(actor, (x) => x.status === 'done');
  t.equal(s.value, 'unloaded');
});

t.test('an idle instance drains at once; queries are not accepted while draining', async (t) => {
  const resolved = loaded.resolveState({ value: { serving: 'active' }, context: { ...input, inFlight: 0, verdict: 'active' } });
  const [next] = transition(loaded, resolved, { type: 'drain.requested' });
  t.equal(next.value, 'unloading');
  const draining = loaded.resolveState({ value: 'draining', context: { ...input, inFlight: 1, verdict: 'active' } });
  const [after] = transition(loaded, draining, { type: 'query.accepted' });
  t.equal(after.context.inFlight, 1, 'draining ignores new queries');
});

t.test('a crash while serving is a failure', async (t) => {
  const actor = await serving();
  actor.send({ type: 'instance.crashed', error: 'ORT aborted' });
  t.equal(actor.getSnapshot().value, 'failed');
  t.equal(actor.getSnapshot().context.error, 'ORT aborted');
});

t.test('a repeated verdict changes nothing and publishes nothing', async (t) => {
  let published = 0;
  const m = loaded.provide({ actions: { publishState: () => { published++; } } });
  const actor = createActor(m, { input }).start();
  await waitFor(actor, (s) => s.matches({ serving: 'active' }));
  const before = published;
  actor.send({ type: 'monitor.verdict', verdict: 'active', reason: 'still fine' });
  t.equal(published, before);
  actor.send({ type: 'monitor.verdict', verdict: 'interfered', reason: 'slow' });
  actor.send({ type: 'monitor.verdict', verdict: 'interfered', reason: 'still slow' });
  t.equal(published, before + 1);
  t.equal(actor.getSnapshot().context.reason, 'slow');
});

t.test('verdicts as pure transitions: active -> overloaded -> interfered -> active; loading ignores them', async (t) => {
  const ctx = { ...input, inFlight: 0, verdict: 'active' as const };
  let s = loaded.resolveState({ value: { serving: 'active' }, context: ctx });
  for (const [verdict, want] of [['overloaded', 'overloaded'], ['interfered', 'interfered'], ['active', 'active']] as const) {
    [s] = transition(loaded, s, { type: 'monitor.verdict', verdict, reason: verdict });
    t.same(s.value, { serving: want }, `-> ${want}`);
    t.equal(s.context.verdict, verdict);
  }
  const [stillLoading] = transition(loaded, loaded.resolveState({ value: 'loading', context: ctx }), { type: 'monitor.verdict', verdict: 'overloaded', reason: 'x' });
  t.equal(stillLoading.value, 'loading');
  const [crashed] = transition(loaded, s, { type: 'instance.crashed', error: 'thread died' });
  t.equal(crashed.value, 'failed');
  t.equal(crashed.context.error, 'thread died');
});
