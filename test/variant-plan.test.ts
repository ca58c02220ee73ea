import t from 'tap';
import { allowedBatches, defaultGeneratorOptions, groupForProfiling, planVariants } from '../actors/profiler/plan.js';

const model = { name: 'm', task: 'x', inputs: [{ name: 'i', dtype: 'float32' as const, shape: [null, 4] }] };
const files = { fp32: { object: 'variants/m/fp32.onnx', sizeBytes: 400 }, int8: { object: 'variants/m/int8.onnx', sizeBytes: 100 } };

t.test('the default grid is precision x opt level x batch cap x threads', async (t) => {
  const vs = planVariants(model, defaultGeneratorOptions, files, 0);
  t.equal(vs.length, 2 * 2 * 3 * 2);
  t.equal(new Set(vs.map((v) => v.id)).size, vs.length, 'ids are unique');
  t.ok(vs.every((v) => v.id.startsWith('m.')));
  t.equal(vs.find((v) => v.precision === 'int8')!.sizeBytes, 100);
  t.ok(vs.some((v) => v.maxBatch === 32) && vs.some((v) => v.maxBatch === 1));
});

t.test('static int8 variants exist only at optimisation level all, where ORT fuses Q/DQ', async (t) => {
  const vs = planVariants(model, defaultGeneratorOptions, { ...files, 'int8-static': { object: 'variants/m/int8-static.onnx', sizeBytes: 110 } }, 0);
  const stat = vs.filter((v) => v.precision === 'int8-static');
  t.equal(stat.length, 3 * 2, 'batch caps x threads at one level');
  t.ok(stat.every((v) => v.optLevel === 'all' && v.sizeBytes === 110));
  t.equal(vs.length, 2 * 2 * 3 * 2 + 3 * 2);
});

t.test('no int8 file means no int8 variants', async (t) => {
  const vs = planVariants(model, defaultGeneratorOptions, { fp32: files.fp32 }, 0);
  t.ok(vs.every((v) => v.precision === 'fp32'));
});

t.test('a fixed batch dimension allows only that batch size', async (t) => {
  t.same(allowedBatches({ inputs: [{ name: 'i', dtype: 'float32', shape: [1, 4] }] }, [1, 8, 32]), [1]);
  t.same(allowedBatches(model, [32, 1, 8, 8]), [1, 8, 32]);
});

t.test('variants that differ only in batch cap share one profiling run', async (t) => {
  const groups = groupForProfiling(planVariants(model, defaultGeneratorOptions, files, 0));
  t.equal(groups.length, 2 * 2 * 2);
  for (const g of groups) {
    t.equal(g.variants.length, 3);
    t.equal(g.maxBatch, 32);
  }
});
