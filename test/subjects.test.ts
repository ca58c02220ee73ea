import t from 'tap';
import { checkToken, keys, objects, splitVariantId, subjects } from '../subjects/index.js';

t.test('builds names from checked tokens', async (t) => {
  t.equal(subjects.events.model('mlp-small'), 'infaas.events.registry.mlp-small');
  t.equal(keys.variant('mlp-small', 'fp32-all-b1-t1-cpu'), 'mlp-small.fp32-all-b1-t1-cpu');
  t.equal(keys.profile('mlp-small.fp32-all-b1-t1-cpu', 'cpu-2t'), 'mlp-small.fp32-all-b1-t1-cpu.cpu-2t');
  t.equal(objects.model('m1'), 'models/m1/model.onnx');
  t.same(splitVariantId('m.v'), { model: 'm', suffix: 'v' });
});

t.test('refuses tokens that would change a subject or key', async (t) => {
  for (const bad of ['a.b', 'a b', '*', '>', '', '-lead', 'x'.repeat(65), 'a/b']) {
    t.throws(() => checkToken('model', bad), { code: 'INVALID_NAME' }, JSON.stringify(bad));
  }
  t.throws(() => subjects.events.model('evil.>'), { code: 'INVALID_NAME' });
  t.throws(() => splitVariantId('a.b.c'), { code: 'INVALID_NAME' });
});
