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

t.test('draining waits until the host says its queries are answered, then unloads', async (t) => {
  const actor = await serving();
  actor.send({ type: 'drain.requested', idle: false });
  t.equal(actor.getSnapshot().value, 'draining');
  actor.send({ type: 'monitor.verdict', verdict: 'overloaded', reason: 'late' });
  t.equal(actor.getSnapshot().value, 'draining', 'verdicts do not matter any more');
  actor.send({ type: 'queries.drained' });
  const s = await waitFor(actor, (x) => x.status === 'done');
  t.equal(s.value, 'unloaded');
});

t.test('an idle instance drains at once', async (t) => {
  const resolved = loaded.resolveState({ value: { serving: 'active' }, context: { ...input, verdict: 'active' } });
  const [next] = transition(loaded, resolved, { type: 'drain.requested', idle: true });
  t.equal(next.value, 'unloading');
});

t.test('a drain while loading ends the load: the load is aborted and the half-opened session closed', async (t) => {
  let closed = false;
  let aborted = false;
  let open!: () => void;
  const m = instanceMachine.provide({
    actors: {
      loadSession: fromPromise<void, InstanceInput>(async ({ signal }) => {
        await new Promise<void>((r) => { open = r; });
        aborted = signal.aborted;
        if (signal.aborted) closed = true; // what the host does: close what it opened
      }),
      releaseSession: fromPromise<void, InstanceInput>(async () => {}),
    },
  });
  const actor = createActor(m, { input }).start();
  await new Promise((r) => setTimeout(r, 5));
  actor.send({ type: 'drain.requested', idle: false });
  const s = await waitFor(actor, (x) => x.status === 'done');
  t.equal(s.value, 'unloaded', 'unloaded without ever serving');
  open();
  await new Promise((r) => setTimeout(r, 5));
  t.ok(aborted && closed, 'the load saw the abort and closed its session');
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
  const ctx = { ...input, verdict: 'active' as const };
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
