// Registering a real model end to end: variants are generated, loadable and profiled on this machine.
import t from 'tap';
import { objectBytes, kvKeys } from '../runtime/bus/store.js';
import { ort } from '../runtime/onnx/onnx-session.js';
import { services } from '../subjects/index.js';
import type { RegistryEvent } from '../schemas/registry.js';
import { loadSplit } from '../zoo/data.js';
import { startTestSystem } from './helpers/system.js';
import { registerZooModel, VALIDATION_SAMPLES } from './helpers/zoo.js';

t.test('registers a model and profiles every generated variant', async (t) => {
  const sys = await startTestSystem(t);
  const events: RegistryEvent[] = [];
  const info = await registerZooModel(sys.client, 'mlp-small', events);

  t.equal(info.model.status, 'registered');
  t.equal(info.variants.length, 4, 'fp32+int8 x batch caps 1, 8 (test grid)');
  t.same(info.model.variants.sort(), info.variants.map((v) => v.id).sort());
  const types = new Set(events.map((e) => e.type));
  for (const ty of ['registration.received', 'registration.validated', 'variants.generated', 'profile.started', 'profile.finished', 'registration.progress', 'registration.completed']) {
    t.ok(types.has(ty as RegistryEvent['type']), `event ${ty} published`);
  }

  t.test('every variant file loads in ONNX Runtime; int8 is smaller on disk', async (t) => {
    const sizes: Record<string, number> = {};
    for (const v of info.variants) {
      const bytes = await objectBytes(sys.stores.repository, v.object);
      t.equal(bytes.byteLength, v.sizeBytes);
      sizes[v.precision] = bytes.byteLength;
      const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: v.optLevel, intraOpNumThreads: v.intraOpThreads });
      const out = await s.run({ image: new ort.Tensor('float32', new Float32Array(2 * 784), [2, 1, 28, 28]) });
      t.same(out.logits.dims, [2, 10], `${v.id} runs`);
      await s.release();
    }
    t.ok(sizes.int8 < sizes.fp32, `int8 ${sizes.int8} < fp32 ${sizes.fp32} bytes`);
  });

  t.test('profiles are positive, cover each batch size up to the cap, and measure accuracy', async (t) => {
    for (const v of info.variants) {
      const p = v.profiles['cpu-test'];
      t.equal(p.status, 'done', v.id);
      t.ok(p.loadMs! > 0, 'load time');
      t.ok(p.peakMemoryBytes! > 0, 'peak memory');
      t.same(p.latency!.map((l) => l.batch), v.maxBatch === 1 ? [1] : [1, 2, 4, 8]);
      t.ok(p.latency!.every((l) => l.p50Ms > 0 && l.p99Ms >= l.p50Ms && l.runs >= 5), 'latencies positive, p99 >= p50');
      t.equal(p.accuracySource, 'measured');
      t.equal(p.validationSamples, VALIDATION_SAMPLES);
    }
  });

  t.test('fp32 accuracy equals a direct ONNX Runtime evaluation of the validation set', async (t) => {
    const v = loadSplit('validation', VALIDATION_SAMPLES);
    const s = await ort.InferenceSession.create(await objectBytes(sys.stores.repository, info.model.object));
    const out = (await s.run({ image: new ort.Tensor('float32', v.images, [v.count, 1, 28, 28]) })).logits.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < v.count; i++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (out[i * 10 + k] > out[i * 10 + best]) best = k;
      if (best === v.labels[i]) correct++;
    }
    const fp32 = info.variants.filter((x) => x.precision === 'fp32');
    for (const x of fp32) t.equal(x.profiles['cpu-test'].accuracy, correct / v.count, x.id);
    const int8 = info.variants.find((x) => x.precision === 'int8')!;
    t.ok(Math.abs(int8.profiles['cpu-test'].accuracy! - correct / v.count) < 0.05, 'int8 accuracy measured separately, close to fp32');
  });

  t.test('metadata lives in KV as one-line JSON, services answer micro pings', async (t) => {
    const e = await sys.stores.models.get('mlp-small');
    const text = new TextDecoder().decode(e!.value);
    t.notMatch(text, /\n/);
    t.equal(JSON.parse(text).status, 'registered');
    t.equal((await kvKeys(sys.stores.profiles, 'mlp-small.>')).length, 4);
    for (const name of [services.registry, services.profiler]) {
      const reply = await sys.nc.request(`$SRV.PING.${name}`, new Uint8Array(), { timeout: 2000 });
      t.equal(JSON.parse(new TextDecoder().decode(reply.data)).name, name);
    }
  });

  t.test('listing by task and unregistering', async (t) => {
    t.same((await sys.client.models('digit-classification')).map((m) => m.name), ['mlp-small']);
    t.same(await sys.client.models('other-task'), []);
    const r = await sys.client.unregister('mlp-small');
    t.same(r.removed, { variants: 4, profiles: 4, objects: 4 });
    t.same(await kvKeys(sys.stores.variants), []);
    await t.rejects(sys.client.info('mlp-small'), { code: 'MODEL_NOT_FOUND' });
    await t.rejects(sys.client.unregister('mlp-small'), { code: 'MODEL_NOT_FOUND' });
  });
});
