// The registry's state lives in KV: restarted registrars rebuild their view, finish nothing by halves,
// and workers of another hardware class profile what was registered before they joined.
import t from 'tap';
import { startProfiler } from '../actors/profiler/index.js';
import { startRegistrar } from '../actors/registrar/index.js';
import { encodeJson } from '../runtime/bus/codec.js';
import { silentLogger } from '../runtime/log.js';
import { entryValue, kvGet, kvKeys, putObject } from '../runtime/bus/store.js';
import type { ProfileRecord } from '../schemas/registry.js';
import { registerZoo } from '../cluster/zoo.js';
import { fastProfiler, startTestSystem } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';

t.test('restarts and late joiners', async (parent) => {
  const sys = await startTestSystem(parent);
  const before = await registerZooModel(sys.client, 'mlp-small');

  parent.test('a new registrar rebuilds its view from KV', async (t) => {
    await sys.registrar.stop();
    const again = await startRegistrar({ nc: sys.nc, stores: sys.stores, log: silentLogger });
    parent.teardown(() => again.stop()); // serves the later subtests too
    t.not(again.id, sys.registrar.id);
    t.same(await sys.client.info('mlp-small'), before);
    t.same((await sys.client.models()).map((m) => m.name), ['mlp-small']);
  });

  parent.test('a registration abandoned by a dead registrar is rolled back on start', async (t) => {
    // Past validation (the full record), half-way through generating variants.
    await sys.stores.models.put('ghost', encodeJson({
      name: 'ghost', task: 'digit-classification', dataset: 'mnist', framework: 'onnx', inputs: [], outputs: [], submitter: 'test',
      status: 'generating', object: 'models/ghost/model.onnx', sizeBytes: 3, variants: [], registrar: 'dead-registrar', createdAt: Date.now(), updatedAt: Date.now(),
    }));
    // A claim (validation under way) left by another dead registrar, written before timestamps were epoch ms.
    await sys.stores.models.put('ghost2', encodeJson({ name: 'ghost2', status: 'validating', registrar: 'dead-registrar', createdAt: '2026-11-01T10:00:00.000Z', updatedAt: '2026-11-01T10:00:00.000Z' }));
    await putObject(sys.stores.repository, 'models/ghost/model.onnx', new Uint8Array([1, 2, 3]));
    const r = await startRegistrar({ nc: sys.nc, stores: sys.stores, log: silentLogger });
    t.teardown(() => r.stop());
    t.equal(await kvGet(sys.stores.models, 'ghost'), undefined);
    t.equal(await kvGet(sys.stores.models, 'ghost2'), undefined, 'an abandoned claim too');
    t.notOk((await sys.stores.repository.list()).some((o) => !o.deleted && o.name.startsWith('models/ghost/')));
    t.ok(await kvGet(sys.stores.models, 'mlp-small'), 'registered models untouched');
  });

  parent.test('a worker of another hardware class profiles existing variants for its class, taking over abandoned claims', async (t) => {
    // A profiler of that class died half-way through one variant: its claim says 'running'.
    const abandoned = before.variants[0].id;
    await sys.stores.profiles.put(`${abandoned}.cpu-other`, encodeJson({
      variant: abandoned, model: 'mlp-small', hardwareClass: 'cpu-other', status: 'running', worker: 'dead-worker', startedAt: Date.now(),
    }));
    const watch = await sys.stores.profiles.watch({ key: 'mlp-small.>' });
    const other = await startProfiler({
      nc: sys.nc, stores: sys.stores, log: silentLogger, ...fastProfiler,
      hardwareClass: 'cpu-other', generator: { ...fastProfiler.generator, threads: [1] },
    });
    t.teardown(() => other.stop());
    const done = new Map<string, ProfileRecord>();
    for await (const e of watch) {
      const p = entryValue<ProfileRecord>(e);
      if (p?.hardwareClass === 'cpu-other' && p.status === 'done') done.set(p.variant, p);
      if (done.size === before.variants.length) break;
    }
    watch.stop();
    const info = await sys.client.info('mlp-small');
    for (const v of info.variants) {
      t.same(Object.keys(v.profiles).sort(), ['cpu-other', 'cpu-test'], v.id);
      t.equal(v.profiles['cpu-other'].worker, other.workerId);
      t.equal(v.profiles['cpu-other'].status, 'done');
    }
  });

  parent.test('registering the zoo twice registers nothing the second time', async (t) => {
    const first = await registerZoo(sys.client, { only: ['cnn-small'], validationSamples: 50 });
    t.same(first, [{ name: 'cnn-small', outcome: 'registered' }]);
    const keys = await kvKeys(sys.stores.variants);
    const files = (await sys.stores.repository.list()).filter((o) => !o.deleted).map((o) => o.name).sort();
    const second = await registerZoo(sys.client, { only: ['cnn-small', 'mlp-small'], validationSamples: 50 });
    t.same(second, [{ name: 'mlp-small', outcome: 'already registered' }, { name: 'cnn-small', outcome: 'already registered' }]);
    t.same(await kvKeys(sys.stores.variants), keys);
    t.same((await sys.stores.repository.list()).filter((o) => !o.deleted).map((o) => o.name).sort(), files, 'no uploads left behind');
    t.notOk(files.some((f) => f.startsWith('uploads/')));
  });
});
