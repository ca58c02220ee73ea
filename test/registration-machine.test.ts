// Pure lifecycle tests of the registration machine: fake effects, no server.
import t from 'tap';
import { createActor, fromPromise, initialTransition, waitFor } from 'xstate';
import { generatedMessage, registrationMachine } from '../actors/registrar/machine.js';
import type { ModelRecord, RegisterRequest, VariantRecord } from '../schemas/registry.js';

const request = { name: 'm', task: 't' } as RegisterRequest;
const model = { name: 'm', status: 'generating' } as ModelRecord;
const variants = [{ id: 'm.v1' }, { id: 'm.v2' }] as VariantRecord[];

function run(overrides: Partial<Record<'validate' | 'generate' | 'awaitProfiles' | 'complete' | 'rollback', () => Promise<unknown>>>) {
  const calls: string[] = [];
  const states: string[] = [];
  const fake = (name: string, fn?: () => Promise<unknown>, value?: unknown) =>
    fromPromise(async () => { calls.push(name); return fn ? fn() : value; });
  const machine = registrationMachine.provide({
    actors: {
      validate: fake('validate', overrides.validate, model) as never,
      generate: fake('generate', overrides.generate, { variants, skipped: [] }) as never,
      awaitProfiles: fake('awaitProfiles', overrides.awaitProfiles, { hardwareClass: 'c', profiled: 2, unsupported: 0 }) as never,
      complete: fake('complete', overrides.complete, { ...model, status: 'registered' }) as never,
      rollback: fake('rollback', overrides.rollback) as never,
    },
    actions: {
      accept: () => { calls.push('accept'); },
      reject: (_, p) => { calls.push(`reject:${p.error.code}`); },
      report: (_, p) => { calls.push(`event:${p.type}`); if (p.type === 'variants.generated') calls.push(`message:${p.message}`); },
    },
  });
  const actor = createActor(machine, { input: { request } });
  actor.subscribe({ next: (s) => states.push(String(s.value)), error: () => {} });
  actor.start();
  return { actor, calls, states };
}

t.test('starts by reporting receipt and validating', async (t) => {
  const [snapshot] = initialTransition(registrationMachine, { request });
  t.equal(snapshot.value, 'validating');
});

t.test('a good registration goes validating -> generating -> profiling -> registered', async (t) => {
  const { actor, calls, states } = run({});
  const s = await waitFor(actor, (x) => x.status === 'done');
  t.equal(s.value, 'registered');
  t.same(s.output, { status: 'registered', model: { ...model, status: 'registered' }, variants });
  t.same([...new Set(states)], ['validating', 'generating', 'profiling', 'completing', 'registered']);
  t.same(calls.filter((c) => !c.startsWith('event:') && !c.startsWith('message:')), ['validate', 'accept', 'generate', 'awaitProfiles', 'complete']);
  t.ok(calls.includes('event:registration.completed'));
  t.ok(calls.includes('message:2 variants generated'));
});

t.test('variant kinds not generated are named with their reasons', async (t) => {
  t.equal(
    generatedMessage({ variants, skipped: [{ kind: 'int8-static', reason: 'no validation set to calibrate on' }] }),
    '2 variants generated; not generated: int8-static (no validation set to calibrate on)',
  );
});

t.test('a refused request is answered with its code and needs no rollback', async (t) => {
  const err = Object.assign(new Error('dup'), { code: 'DUPLICATE_MODEL' });
  const { actor, calls } = run({ validate: () => Promise.reject(err) });
  const s = await waitFor(actor, (x) => x.status === 'done');
  t.equal(s.value, 'failed');
  t.ok(calls.includes('reject:DUPLICATE_MODEL'));
  t.notOk(calls.includes('rollback'));
  t.notOk(calls.includes('accept'));
});

for (const stage of ['generate', 'awaitProfiles', 'complete'] as const) {
  t.test(`a failure while ${stage === 'awaitProfiles' ? 'profiling' : stage === 'generate' ? 'generating' : 'completing'} rolls everything back`, async (t) => {
    const err = Object.assign(new Error('boom'), { code: 'PROFILING_FAILED' });
    const { actor, calls, states } = run({ [stage]: () => Promise.reject(err) });
    const s = await waitFor(actor, (x) => x.status === 'done');
    t.equal(s.value, 'failed');
    t.ok(states.includes('rollingBack'));
    t.ok(calls.includes('rollback'));
    t.same(s.output, { status: 'failed', error: { code: 'PROFILING_FAILED', message: 'boom' } });
    t.ok(calls.includes('event:registration.failed'));
  });
}
