// The claim check's pure parts: the wire form of a tensor by reference, its schema (also as JSON
// Schema for other languages), and which tensors go by reference so that a message fits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { headers } from 'nats';
import { Query, validate } from '../schemas/index.js';
import { renderSchemas } from '../schemas/export.js';
import { chooseOffload, fetchTensor, messageBytes, openBlobStore, putTensor } from '../runtime/bus/blobs.js';
import { arrayToTensor, tensorToArray } from '../runtime/bus/codec.js';
import { openStores } from '../runtime/bus/store.js';
import { connectBus } from '../runtime/bus/nats.js';
import { credentialFile, ensureLocalCredentials, resolveAccess } from '../runtime/bus/auth.js';
import { silentLogger } from '../runtime/log.js';
import { buckets } from '../subjects/index.js';
import type { Role } from '../subjects/access.js';
import { startTestNats } from './helpers/system.js';

const ref = { dtype: 'float32', shape: [1, 3, 1024, 1024], ref: { bucket: 'infaas_blobs', object: 'AbC123', bytes: 12582912 } };
const q = (x: unknown) => ({ model: 'det', slo: { latencyMs: 100 }, inputs: { x } });

t.test('a tensor travels inline or by reference to the blobs bucket, and each defect is named', async (t) => {
  t.ok(validate(Query, q(ref), 'query'), 'by reference');
  t.ok(validate(Query, q({ ...ref, ref: { object: 'AbC123', bytes: 4 } }), 'query'), 'the bucket may go unsaid');
  t.throws(() => validate(Query, q({ ...ref, ref: { ...ref.ref, bucket: 'infaas_repo' } }), 'query'), { code: 'BAD_REQUEST', message: /\/inputs\/x\/ref\/bucket: Expected 'infaas_blobs'/ });
  t.throws(() => validate(Query, q({ ...ref, ref: { ...ref.ref, object: '../models/x' } }), 'query'), { message: /\/inputs\/x\/ref\/object/ });
  t.throws(() => validate(Query, q({ dtype: 'float32', shape: [1] }), 'query'), { message: /\/inputs\/x\/data: Expected required property/ }, 'neither data nor ref: the inline form\'s problem');
  t.throws(() => validate(Query, q({ ...ref, data: [1] }), 'query'), { code: 'BAD_REQUEST' }, 'both data and ref');
  const ajv = new (await import('ajv')).Ajv({ strict: true, strictRequired: false, allowUnionTypes: true });
  const check = ajv.compile(JSON.parse(renderSchemas().get('Query.schema.json')!) as object);
  t.ok(check(q(ref)), 'the JSON Schema takes a reference too');
  t.notOk(check(q({ ...ref, ref: { ...ref.ref, bucket: 'infaas_repo' } })), 'and only into the blobs bucket');
});

t.test('the largest tensors go by reference, only as many as the message needs', async (t) => {
  const sizes = new Map([['a', 5_000_000], ['b', 3_000_000], ['c', 100]]);
  t.same(chooseOffload(sizes, 8_100_200, 8_000_000), ['a'], 'the largest alone suffices');
  t.same(chooseOffload(sizes, 8_000_300, 1_000), ['a', 'b'], 'then the next');
  t.equal(chooseOffload(sizes, 8_100_200, 50), undefined, 'what cannot fit even so');
  t.same(chooseOffload(sizes, 1_000, 8_000_000), [], 'nothing when it fits');
});

t.test("a message's size counts its headers, as the max payload does", async (t) => {
  const h = headers();
  h.set('Content-Type', 'application/msgpack');
  t.equal(messageBytes(new Uint8Array(100), h), 100 + 'NATS/1.0\r\n\r\n'.length + 'Content-Type: application/msgpack\r\n'.length);
  t.equal(messageBytes(new Uint8Array(100)), 100);
});

t.test('with access control on, a client credential puts, reads and deletes blobs, and reaches no other stream', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'infaas-blobs-acl-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = await startTestNats(t, { auth: ensureLocalCredentials(dataDir) });
  const as = async (role: Role) => {
    const nc = await connectBus({ servers: server.url, name: role, log: silentLogger, extra: resolveAccess({ credentials: credentialFile(dataDir, role) }, role).options });
    const denied: string[] = [];
    void (async () => { for await (const s of nc.status()) if (s.permissionContext) denied.push(`${s.permissionContext.operation} ${s.permissionContext.subject}`); })();
    t.teardown(() => nc.close());
    return { nc, denied };
  };
  const worker = await as('worker');
  await openStores(worker.nc);
  const client = await as('client');
  const mine = await openBlobStore(client.nc);
  const theirs = await openBlobStore(worker.nc);
  const x = arrayToTensor('float32', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
  const input = await putTensor(mine, x);
  t.same(Array.from(tensorToArray(await fetchTensor(theirs, input, 'input x')) as Float32Array), [1, 2, 3, 4, 5, 6], 'the worker reads what the client put');
  const output = await putTensor(theirs, x);
  t.same((await fetchTensor(mine, output, 'output y')).shape, [2, 3], 'and the client what the worker put');
  await mine.delete([input.ref, output.ref]);
  await t.rejects(fetchTensor(mine, input, 'input x'), { code: 'OBJECT_NOT_FOUND' }, 'deleted');
  t.same(client.denied, [], 'nothing of it refused');
  await t.rejects(client.nc.request(`$JS.API.STREAM.INFO.OBJ_${buckets.repository}`, new Uint8Array(0)), /Permissions Violation|PERMISSIONS_VIOLATION/i, 'the model repository stays out of reach');
});

t.test('blobs are chunked within a small max payload, and read back whole', async (t) => {
  const server = await startTestNats(t, { maxPayload: 64 * 1024 });
  const nc = await connectBus({ servers: server.url, name: 'small', log: silentLogger });
  t.teardown(() => nc.close());
  const blobs = await openBlobStore(nc);
  const values = new Float32Array(300_000).map((_, i) => i * 0.5);
  const r = await putTensor(blobs, arrayToTensor('float32', [300_000], values));
  const info = await blobs.os.info(r.ref.object);
  t.ok(info && info.chunks > 18 && info.options?.max_chunk_size !== undefined && info.options.max_chunk_size < 64 * 1024, 'chunks under the max payload');
  t.same(tensorToArray(await fetchTensor(blobs, r, 'x')), values, 'read back whole, digest checked');
  t.same(await blobs.os.getBlob(r.ref.object), new Uint8Array(values.buffer), "and nats.js's own reader agrees (the Object Store format)");
});

t.test('fetch time of inputs by reference: measured per MiB, estimated per query', async (t) => {
  const { FetchRate, fetchEstimateMs, referencedBytes, DEFAULT_BLOB_MS_PER_MIB } = await import('../runtime/bus/blobs.js');
  const r = new FetchRate();
  t.equal(r.msPerMiB, undefined, 'nothing measured yet');
  r.note(1024, 50);
  t.equal(r.msPerMiB, undefined, 'a fetch under 64 KiB says little per byte: ignored');
  r.note(4 * 1024 * 1024, 20);
  t.equal(r.msPerMiB, 5, 'first sample: 20 ms for 4 MiB');
  r.note(2 * 1024 * 1024, 2);
  t.equal(r.msPerMiB, 0.8 * 5 + 0.2 * 1, 'smoothed');
  const named = {
    a: { dtype: 'float32' as const, shape: [1, 1024, 1024], ref: { object: 'o1', bytes: 4 * 1024 * 1024 } },
    b: { dtype: 'float32' as const, shape: [1], data: new Uint8Array(4) },
  };
  t.equal(referencedBytes(named), 4 * 1024 * 1024, 'only the reference counts');
  t.equal(fetchEstimateMs(referencedBytes(named), 3), 12);
  t.equal(fetchEstimateMs(referencedBytes(named)), 4 * DEFAULT_BLOB_MS_PER_MIB, 'the default before any measurement');
  t.equal(fetchEstimateMs(referencedBytes({ b: named.b }), 3), 0, 'inline only: nothing to fetch');
});
