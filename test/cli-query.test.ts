// `infaas query` as a person uses it with their own inputs: JSON numbers sent as the input's dtype,
// raw files sent as bytes, answers summarised by shape, retryable errors retried while loading.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { jsonTensors, outputRows, parseRawInput, rawTensor, rowArgmax, summarise, writeOutputs } from '../cluster/query-command.js';
import { arrayToTensor, tensorToArray, unpackMsgpack } from '../runtime/bus/codec.js';
import type { TensorSpec } from '../schemas/tensor.js';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';
import { loadSplit } from '../zoo/data.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';
import { runInfaas } from './helpers/cli.js';

const infaas = runInfaas;

const image: TensorSpec = { name: 'image', dtype: 'float32', shape: [null, 1, 28, 28] };

t.test('JSON numbers travel as the dtype the JSON or the model declares, not float64', async (t) => {
  const declared = new Map([['image', image]]);
  const f = jsonTensors({ image: { shape: [1, 1, 2, 2], data: [0.5, 1, 1.5, 2] } }, declared);
  t.equal(f.image.dtype, 'float32', "the model's dtype");
  t.equal((f.image.data as Uint8Array).byteLength, 16, '4 bytes a number');
  t.same(Array.from(tensorToArray(f.image) as Float32Array), [0.5, 1, 1.5, 2]);
  const ids = jsonTensors({ ids: { dtype: 'int64', shape: [1, 3], data: [1, 2, 3] } }, new Map());
  t.equal((ids.ids.data as Uint8Array).byteLength, 24, 'int64: 8 bytes each');
  const u8 = jsonTensors({ px: { dtype: 'uint8', shape: [4], data: [0, 1, 254, 255] } }, new Map());
  t.equal((u8.px.data as Uint8Array).byteLength, 4, 'uint8: one byte each');
  t.throws(() => jsonTensors({ x: { shape: [1], data: [1] } }, new Map()), /a dtype .* is needed/);
  t.throws(() => jsonTensors({ image: { shape: [1, 1, 2, 2], data: [1, 2] } }, declared), /needs 4 numbers, got 2/);
});

t.test('raw inputs: name=@file[:dtype[:dims]], sizes from the model or the file', async (t) => {
  t.same(parseRawInput('image=@/tmp/a.bin'), [{ name: 'image', file: '/tmp/a.bin' }]);
  t.same(parseRawInput('x=@a.bin:float32:1x3x?x640'), [{ name: 'x', file: 'a.bin', dtype: 'float32', dims: [1, 3, null, 640] }]);
  t.throws(() => parseRawInput('x=a.bin'), /name=@file/);
  t.throws(() => parseRawInput('x=@a.bin:float99'), /unknown dtype "float99"/);
  t.throws(() => parseRawInput('x=@a.bin:float32:?x?'), /at most one \?/);
  const bytes = new Uint8Array(new Float32Array(2 * 784).fill(0.25).buffer);
  const two = rawTensor({ name: 'image', file: 'f' }, bytes, image);
  t.same(two.shape, [2, 1, 28, 28], 'rows from the size, the rest from the declaration');
  t.equal(two.dtype, 'float32');
  t.same(rawTensor({ name: 'x', file: 'f', dtype: 'uint8', dims: [2, null] }, new Uint8Array(10)).shape, [2, 5]);
  t.throws(() => rawTensor({ name: 'image', file: 'f' }, new Uint8Array(100), image), /cannot fit 25 float32 values into \[\?,1,28,28\]/);
  t.throws(() => rawTensor({ name: 'x', file: 'f' }, new Uint8Array(8)), /say its dtype and dims/);
  t.throws(() => rawTensor({ name: 'x', file: 'f', dtype: 'float32', dims: [3] }, new Uint8Array(8)), /needs 12 bytes, the file has 8/);
});

t.test('outputs are summarised by shape without spreading them onto the stack; argmax per row only for classifiers', async (t) => {
  const big = new Float32Array(5_000_000);
  for (let i = 0; i < big.length; i++) big[i] = (i % 1000) / 1000;
  big[4_321_000] = 7;
  const s = summarise(big);
  t.same([s.min, s.max], [0, 7], 'a 5M-value output (Math.max(...values) overflowed the stack): min and max');
  t.ok(Math.abs(s.mean - 0.4995) < 1e-3, 'and mean');
  const logits = arrayToTensor('float32', [3, 4], Float32Array.of(0, 9, 1, 2, 5, 0, 0, 1, 0, 0, 0, 3));
  t.same(rowArgmax(logits, tensorToArray(logits)), [1, 0, 3], 'one class per row');
  const map = arrayToTensor('float32', [1, 1, 2, 2], Float32Array.of(1, 2, 3, 4));
  t.equal(rowArgmax(map, tensorToArray(map)), undefined, 'a dense map has no classes');
  const ids = arrayToTensor('int32', [1, 4], Int32Array.of(1, 2, 3, 4));
  t.equal(rowArgmax(ids, tensorToArray(ids)), undefined, 'nor have integer outputs');
  const rows = outputRows(0, { logits, map });
  t.same(rows[0].slice(1, 4), ['logits', 'float32', '[3,4]']);
  t.equal(rows[0][7], '1 0 3');
  t.equal(rows[1][7], '-');
});

t.test('outputs written as JSON numbers, raw bytes or MessagePack', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'infaas-out-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const y = arrayToTensor('float32', [1, 3], Float32Array.of(1, 2.5, -3));
  writeOutputs(join(dir, 'y.json'), { y });
  t.same(JSON.parse(readFileSync(join(dir, 'y.json'), 'utf8')), { y: { dtype: 'float32', shape: [1, 3], data: [1, 2.5, -3] } });
  writeOutputs(join(dir, 'y.bin'), { y });
  t.same(Array.from(new Float32Array(new Uint8Array(readFileSync(join(dir, 'y.bin'))).buffer)), [1, 2.5, -3]);
  t.throws(() => writeOutputs(join(dir, 'two.bin'), { y, z: y }), /a \.bin file holds one output/);
  writeOutputs(join(dir, 'y.msgpack'), { y });
  const doc = unpackMsgpack(readFileSync(join(dir, 'y.msgpack'))) as Record<string, { dtype: 'float32'; shape: number[]; data: Uint8Array }>;
  t.same(Array.from(tensorToArray(doc.y) as Float32Array), [1, 2.5, -3]);
});

t.test('infaas up refuses a max payload nats-server cannot take', async (t) => {
  const r = await infaas(['up', '--once', '--max-payload', '65MiB']);
  t.equal(r.code, 1);
  t.match(r.stderr, /max payload must be a whole number of bytes from 1024 to 67108864/);
});

t.test('infaas query with your own inputs, against a running system', async (t) => {
  const sys = await startTestSystem(t);
  await registerZooModel(sys.client, 'mlp-small', [], 'cli-a');
  await registerZooModel(sys.client, 'mlp-small', [], 'cli-b');
  await startTestWorker(t, sys);
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'cli-query' });
  t.teardown(() => dispatcher.stop());
  const dir = mkdtempSync(join(tmpdir(), 'infaas-query-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { images } = loadSplit('validation', 2);

  t.test('a retryable error is retried after its retryAfterMs while the person waits; with --wait 0 it is the answer', async (t) => {
    const now = await infaas(['query', '--model', 'cli-a', '--latency', '20', '--wait', '0', '-s', sys.url]);
    t.equal(now.code, 1);
    t.match(now.stderr, /error INSTANCE_LOADING: .*retry in ~\d+ ms/, 'the load does not fit 20 ms: told to come back');
    // 150 ms: still short of a load (the profile's load time plus a session start of 200 ms), and
    // room for the answer once loaded on a busy machine (20 ms was missed under load in CI).
    const later = await infaas(['query', '--model', 'cli-b', '--latency', '150', '-s', sys.url]);
    t.equal(later.code, 0, later.stderr);
    t.match(later.stderr, /INSTANCE_LOADING: retrying in \d+ ms/, 'said on stderr');
    t.match(later.stdout, /cli-b\s+\S+\s+worker-\S+\s+cpu-test/, 'then served');
    t.match(later.stdout, /0\s+logits\s+float32\s+\[1,10\]\s+\S+\s+\S+\s+\S+\s+\d/, 'the output by shape, with its class');
  });

  t.test('JSON inputs without a dtype take the model\'s, and outputs go to a file', async (t) => {
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ image: { shape: [1, 1, 28, 28], data: Array.from(images.subarray(0, 784)) } }));
    const r = await infaas(['query', '--model', 'cli-b', '--latency', '1000', '--inputs', join(dir, 'in.json'), '--out', join(dir, 'out.json'), '-s', sys.url]);
    t.equal(r.code, 0, r.stderr);
    t.notMatch(r.stdout, /label/, 'no answer column for your own inputs');
    const out = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { logits: { dtype: string; shape: number[]; data: number[] } };
    t.same(out.logits.shape, [1, 10]);
    t.equal(out.logits.data.length, 10);
  });

  t.test('raw files are sent as bytes, rows taken from the size', async (t) => {
    writeFileSync(join(dir, 'two.bin'), new Uint8Array(images.buffer, images.byteOffset, 2 * 784 * 4));
    const r = await infaas(['query', '--model', 'cli-b', '--latency', '1000', '--input', `image=@${join(dir, 'two.bin')}`, '--count', '2', '--out', join(dir, 'o.msgpack'), '-s', sys.url]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /0\s+logits\s+float32\s+\[2,10\]/, 'two rows in, two rows out');
    const argmax = /0\s+logits\s+float32\s+\[2,10\](?:\s+\S+){3}\s+(\d) (\d)/.exec(r.stdout);
    t.ok(argmax, 'a class per row');
    t.ok(existsSync(join(dir, 'o.0.msgpack')) && existsSync(join(dir, 'o.1.msgpack')), 'one file per answer');
    t.match(r.stdout, /outputs written to .*o\.0\.msgpack \.\.\. .*o\.1\.msgpack/);
  });
});
