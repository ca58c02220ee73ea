import { readFileSync } from 'node:fs';
import t from 'tap';
import { RegisterRequest, Query, validate } from '../schemas/index.js';
import { renderSchemas } from '../schemas/export.js';

const good = {
  name: 'm', task: 'digit-classification', dataset: 'd', framework: 'onnx', object: 'uploads/x',
  inputs: [{ name: 'image', dtype: 'float32', shape: [null, 1, 28, 28] }],
  outputs: [{ name: 'logits', dtype: 'float32', shape: [null, 10] }], submitter: 's', declaredAccuracy: 0.9,
};

t.test('a valid registration passes; each defect is named', async (t) => {
  t.same(validate(RegisterRequest, good, 'register request'), good);
  t.throws(() => validate(RegisterRequest, { ...good, name: 'a.b' }, 'register request'), { code: 'BAD_REQUEST', message: /\/name/ });
  t.throws(() => validate(RegisterRequest, { ...good, framework: 'tf' }, 'register request'), { code: 'BAD_REQUEST', message: /\/framework/ });
  t.throws(() => validate(RegisterRequest, { ...good, declaredAccuracy: 1.5 }, 'register request'), { code: 'BAD_REQUEST' });
  t.throws(() => validate(RegisterRequest, { ...good, extra: 1 }, 'register request'), { code: 'BAD_REQUEST' });
  t.throws(() => validate(RegisterRequest, { ...good, inputs: [] }, 'register request'), { code: 'BAD_REQUEST', message: /\/inputs/ });
});

t.test('queries need an SLO and keep results in their namespace', async (t) => {
  const q = { task: 'digit-classification', slo: { latencyMs: 10, minAccuracy: 0.9 }, inputs: { image: { dtype: 'float32', shape: [1], data: [0] } } };
  t.ok(validate(Query, q, 'query'));
  t.throws(() => validate(Query, { ...q, slo: { latencyMs: -1 } }, 'query'), { code: 'BAD_REQUEST' });
  t.throws(() => validate(Query, { ...q, resultSubject: 'other.subject' }, 'query'), { code: 'BAD_REQUEST', message: /resultSubject/ });
  t.ok(validate(Query, { ...q, resultSubject: 'infaas.results.me.1' }, 'query'));
});

t.test('hostile names found by the fuzz test are refused', async (t) => {
  const q = { task: 'digit-classification', slo: { latencyMs: 10 }, inputs: { image: { dtype: 'float32', shape: [1], data: [0] } } };
  // A record key its key pattern does not match used to carry an unchecked value (a boolean here).
  t.throws(() => validate(Query, { ...q, inputs: { 'image\n': false } }, 'query'), { code: 'BAD_REQUEST', message: /\/inputs/ });
  t.throws(() => validate(Query, { ...q, inputs: { ['x'.repeat(129)]: q.inputs.image } }, 'query'), { code: 'BAD_REQUEST' });
  // nats.js cannot name an Object Store entry past U+00FF (btoa), so such names are refused up front.
  t.throws(() => validate(RegisterRequest, { ...good, object: 'uploads/\ufffd' }, 'register request'), { code: 'BAD_REQUEST', message: /\/object/ });
  t.ok(validate(RegisterRequest, { ...good, object: 'uploads/my model v2.onnx' }, 'register request'), 'printable ASCII, spaces included');
});

t.test('the committed JSON Schema files match the code (run npm run schemas)', async (t) => {
  for (const [file, text] of renderSchemas()) {
    t.equal(readFileSync(new URL(`../schemas/json/${file}`, import.meta.url), 'utf8'), text, file);
  }
});

t.test('the JSON Schema files are valid draft-07 for a standard validator (ajv, strict), and say what JSON carries', async (t) => {
  const { Ajv } = await import('ajv');
  // strictRequired off: the one-of rule names properties defined beside it, not inside each branch (valid draft-07).
  const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true, allowUnionTypes: true });
  const docs = new Map([...renderSchemas()].map(([file, text]) => [file, JSON.parse(text) as Record<string, unknown>]));
  for (const [file, doc] of docs) {
    t.doesNotThrow(() => ajv.compile(doc), `${file} compiles`);
    t.notMatch(JSON.stringify(doc), /"Uint8Array"/, `${file}: no non-standard type`);
  }
  const query = ajv.compile(docs.get('Query.schema.json')!);
  const inputs = { image: { dtype: 'float32', shape: [1, 2], data: [0.5, 1] } };
  const slo = { latencyMs: 20 };
  t.ok(query({ task: 'digit-classification', slo, inputs }), 'a JSON query as the nats CLI sends it');
  t.notOk(query({ task: 'digit-classification', model: 'cnn-small', slo, inputs }), 'task and model: refused');
  t.notOk(query({ slo, inputs }), 'none of task, model, variant: refused');
  t.notOk(query({ variant: 'a.b', slo, inputs: { image: { dtype: 'float32', shape: [1], data: 'AAAA' } } }), 'data must be numbers in JSON');
});
