// Profiles obey physics: a bigger batch costs more per call, int8 files are smaller, the largest
// model is the slowest per query.
import t from 'tap';
import type { ModelInfo } from '../runtime/client/registry-client.js';
import { startTestSystem } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';

t.test('latency grows with batch size; int8 files are smaller; cnn-wide is slower than mlp-small', async (t) => {
  const sys = await startTestSystem(t, {
    generator: { precisions: ['fp32', 'int8'], optLevels: ['all'], maxBatches: [32], threads: [1], providers: ['cpu'] },
  });
  const infos: Record<string, ModelInfo> = {};
  for (const name of ['mlp-small', 'cnn-wide']) infos[name] = await registerZooModel(sys.client, name);
  for (const info of Object.values(infos)) {
    const [fp32, int8] = ['fp32', 'int8'].map((p) => info.variants.find((v) => v.precision === p)!);
    t.ok(int8.sizeBytes < fp32.sizeBytes / 2, `${info.model.name}: int8 ${int8.sizeBytes} B < fp32 ${fp32.sizeBytes} B`);
  }
  for (const v of infos['cnn-wide'].variants) {
    const lat = v.profiles['cpu-test'].latency!;
    t.same(lat.map((l) => l.batch), [1, 2, 4, 8, 16, 32]);
    const [b1, b32] = [lat[0], lat[lat.length - 1]];
    t.ok(b32.p50Ms > b1.p50Ms, `${v.id}: batch 32 p50 ${b32.p50Ms.toFixed(3)} ms > batch 1 p50 ${b1.p50Ms.toFixed(3)} ms`);
  }
  const b1 = (name: string, precision: string) => infos[name].variants.find((v) => v.precision === precision)!.profiles['cpu-test'].latency![0].p50Ms;
  t.ok(b1('cnn-wide', 'fp32') > b1('mlp-small', 'fp32'), 'the largest model costs more per query than the smallest');
});
