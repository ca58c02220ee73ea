// Every bad registration gets its own error code and leaves nothing behind.
import t, { type Test } from 'tap';
import { RegistryClient } from '../runtime/client/registry-client.js';
import { packMsgpack } from '../runtime/bus/codec.js';
import { buildModel, encodeModel, node, onnxElemType, valueInfo } from '../runtime/onnx/onnx-graph.js';
import { kvGet, kvKeys } from '../runtime/bus/store.js';
import { startRegistrar } from '../actors/registrar/index.js';
import { silentLogger } from '../runtime/log.js';
import { subjects } from '../subjects/index.js';
import type { RegisterRequest, RegistryEvent } from '../schemas/registry.js';
import { encodeValidationSet } from '../runtime/validation-set.js';
import { zooModelBytes, zooModels, zooRequest, zooValidationSet } from '../zoo/index.js';
import { connectTest, startTestNats, startTestSystem } from './helpers/system.js';

t.test('bad registrations', async (t) => {
  const sys = await startTestSystem(t, {}, { maxModelBytes: 300_000 });
  const { client, stores } = sys;
  const zoo = zooModels().find((m) => m.name === 'mlp-small')!;
  const model = await client.upload(zooModelBytes('mlp-small'));
  const validation = await client.upload(zooValidationSet(50));
  const base = (over: Partial<RegisterRequest> = {}): RegisterRequest => ({ ...zooRequest(zoo, model, validation), name: 'bad', ...over });

  async function nothingLeft(t: Test, name = 'bad') {
    t.equal(await kvGet(stores.models, name), undefined, 'no model record');
    t.same(await kvKeys(stores.variants, `${name}.>`), [], 'no variant records');
    const leftovers = (await stores.repository.list()).filter((o) => !o.deleted && (o.name.startsWith(`models/${name}/`) || o.name.startsWith(`variants/${name}/`)));
    t.same(leftovers.map((o) => o.name), [], 'no files');
  }

  const cases: [string, () => Promise<RegisterRequest>, string, RegExp][] = [
    ['an object that is not in the repository', async () => base({ object: 'uploads/nope' }), 'OBJECT_NOT_FOUND', /uploads\/nope/],
    ['bytes that are not ONNX', async () => base({ object: await client.upload(new TextEncoder().encode('this is not a model')) }), 'MODEL_LOAD_FAILED', /ONNX/],
    ['a graph ONNX Runtime cannot load', async () => base({
      object: await client.upload(encodeModel(buildModel({
        name: 'x', nodes: [node('NoSuchOperator', ['image'], ['logits'])], initializers: [],
        inputs: [valueInfo('image', onnxElemType.float32, ['N', 1, 28, 28])], outputs: [valueInfo('logits', onnxElemType.float32, ['N', 10])],
      }))),
    }), 'MODEL_LOAD_FAILED', /ONNX Runtime cannot load/],
    ['a file over the size limit', async () => base({ object: await client.upload(zooModelBytes('mlp-wide')) }), 'PAYLOAD_TOO_LARGE', /limit/],
    ['a wrong input name', async () => base({ inputs: [{ name: 'pixels', dtype: 'float32', shape: [null, 1, 28, 28] }] }), 'SIGNATURE_MISMATCH', /"pixels" is not in the model/],
    ['a wrong input shape', async () => base({ inputs: [{ name: 'image', dtype: 'float32', shape: [null, 784] }] }), 'SIGNATURE_MISMATCH', /shape/],
    ['a wrong output dtype', async () => base({ outputs: [{ name: 'logits', dtype: 'int64', shape: [null, 10] }] }), 'SIGNATURE_MISMATCH', /int64/],
    ['a validation set that is not MessagePack', async () => base({ validation: { object: await client.upload(new Uint8Array([0x92, 0x01])) } }), 'VALIDATION_SET_INVALID', /MessagePack/],
    ['a validation set without labels', async () => base({ validation: { object: await client.upload(packMsgpack({ inputs: {} })) } }), 'VALIDATION_SET_INVALID', /labels/],
    ['a validation set of the wrong shape', async () => base({
      validation: { object: await client.upload(encodeValidationSet(
        { image: { dtype: 'float32', shape: [2, 784], data: new Uint8Array(2 * 784 * 4) } },
        { dtype: 'int32', shape: [2], data: new Uint8Array(8) })) },
    }), 'VALIDATION_SET_INVALID', /shape \[2,784\]/],
    ['labels outside the output classes', async () => base({
      validation: { object: await client.upload(encodeValidationSet(
        { image: { dtype: 'float32', shape: [1, 1, 28, 28], data: new Uint8Array(784 * 4) } },
        { dtype: 'int32', shape: [1], data: new Uint8Array(Int32Array.of(12).buffer) })) },
    }), 'VALIDATION_SET_INVALID', /label 12/],
    ['a missing validation object', async () => base({ validation: { object: 'uploads/missing' } }), 'OBJECT_NOT_FOUND', /validation set/],
    ['a labelled metric with a declared accuracy', async () => base({ declaredAccuracy: 0.9, metric: { kind: 'top1' } }), 'BAD_REQUEST', /goes with metric fidelity/],
    ['neither a validation set nor a declared accuracy', async () => { const { validation: _, ...r } = await base({}); return r; }, 'BAD_REQUEST', /give a validation set/],
    ['a metric without a validation set', async () => { const { validation: _, ...r } = await base({ declaredAccuracy: 0.9, metric: { kind: 'top5' } }); return r; }, 'BAD_REQUEST', /needs a validation set/],
    ['ctc on integer labels', async () => base({ metric: { kind: 'ctc' } }), 'VALIDATION_SET_INVALID', /./],
    ['a metric output that is not an output', async () => base({ metric: { kind: 'top1', output: 'nope' } }), 'BAD_REQUEST', /"nope" is not an output/],
    ['a batch axis on a fixed dimension', async () => base({ batchAxes: { image: 1 } }), 'SIGNATURE_MISMATCH', /batch axis 1 of input image \[\?,1,28,28\] has the fixed size 1/],
    ['an invalid model name', async () => base({ name: 'has.dot' }), 'BAD_REQUEST', /\/name/],
  ];
  for (const [what, make, code, message] of cases) {
    t.test(`refuses ${what} with ${code}`, async (t) => {
      const req = await make();
      await t.rejects(client.submit(req), { code, message });
      if (req.name === 'bad') await nothingLeft(t);
    });
  }

  t.test('a non-JSON control message is MALFORMED_MESSAGE, answered (no timeout)', async (t) => {
    const reply = await sys.nc.request(subjects.registry.register, new TextEncoder().encode('{not json'), { timeout: 5000 });
    t.equal(reply.headers?.get('Nats-Service-Error-Code'), '400');
    t.equal(JSON.parse(new TextDecoder().decode(reply.data)).error.code, 'MALFORMED_MESSAGE');
  });

  t.test('a duplicate name is DUPLICATE_MODEL and the first model is untouched', async (t) => {
    await client.register(base({ name: 'first', validation: undefined, declaredAccuracy: 0.9 }));
    await t.rejects(client.submit(base({ name: 'first' })), { code: 'DUPLICATE_MODEL' });
    const info = await client.info('first');
    t.equal(info.model.status, 'registered');
    t.ok(info.variants.every((v) => v.profiles['cpu-test'].accuracy === 0.9 && v.profiles['cpu-test'].accuracySource === 'declared'));
  });
});

t.test('a failure after acceptance rolls back: no generator running', async (t) => {
  const server = await startTestNats(t);
  const { nc, stores } = await connectTest(t, server.url);
  const registrar = await startRegistrar({ nc, stores, log: silentLogger });
  t.teardown(() => registrar.stop());
  const client = new RegistryClient(nc, stores);
  const zoo = zooModels().find((m) => m.name === 'mlp-small')!;
  const events: RegistryEvent[] = [];
  const req = zooRequest(zoo, await client.upload(zooModelBytes('mlp-small')), await client.upload(zooValidationSet(20)));
  await t.rejects(client.register(req, { onEvent: (e) => events.push(e) }), { code: 'NO_PROFILER' });
  t.ok(events.some((e) => e.type === 'registration.validated'), 'it had been accepted');
  t.equal(events.at(-1)!.type, 'registration.failed');
  t.equal(await kvGet(stores.models, 'mlp-small'), undefined);
  const owned = (await stores.repository.list()).filter((o) => !o.deleted && o.name.startsWith('models/'));
  t.same(owned, [], 'copied model and validation files removed');
});

t.test('two concurrent registrations of one name: one wins and is told, the other is DUPLICATE_MODEL', async (t) => {
  const sys = await startTestSystem(t);
  const zoo = zooModels().find((m) => m.name === 'mlp-small')!;
  // Two callers on their own connections, as two users would be.
  const callers = await Promise.all([1, 2].map(async (i) => {
    const { nc, stores } = await connectTest(t, sys.url, `caller-${i}`);
    const client = new RegistryClient(nc, stores);
    const events: RegistryEvent[] = [];
    const req: RegisterRequest = { ...zooRequest(zoo, await client.upload(zooModelBytes('mlp-small')), await client.upload(zooValidationSet(50))), name: 'contested' };
    return { client, events, req };
  }));
  const outcomes = await Promise.allSettled(callers.map((c) => c.client.register(c.req, { onEvent: (e) => c.events.push(e) })));
  const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [{ i, info: o.value }] : []));
  const lost = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as { code?: string }] : []));
  t.equal(won.length, 1, 'exactly one registration wins');
  t.same(lost.map((e) => e.code), ['DUPLICATE_MODEL'], 'the other is DUPLICATE_MODEL');
  t.equal(won[0]?.info.model.status, 'registered', 'the winner is told when the registration completes');
  t.ok(won[0] && won[0].info.variants.length > 0, 'with its variants');
  t.ok(won[0] && callers[won[0].i].events.some((e) => e.type === 'registration.completed'), 'the winner saw its completion event');
  t.notOk(won[0] && callers[won[0].i].events.some((e) => e.type === 'registration.failed'), 'and not the loser\'s refusal');
  t.equal((await sys.client.info('contested')).model.status, 'registered', 'the model is registered');
});
