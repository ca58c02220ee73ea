import t from 'tap';
import { headers } from 'nats';
import { arrayToTensor, decodePayload, encodePayload, headerEpochMs, tensorToArray } from '../runtime/bus/codec.js';

t.test('MessagePack by default, JSON with the content-type header', async (t) => {
  const value = { a: 1, s: 'x', bin: new Uint8Array([1, 2, 3]) };
  const mp = encodePayload(value);
  t.same(decodePayload(mp.data, mp.headers), value);
  const h = headers();
  h.set('Content-Type', 'application/json');
  t.same(decodePayload(new TextEncoder().encode('{"a":[1,2]}'), h), { a: [1, 2] });
  t.throws(() => decodePayload(new TextEncoder().encode('{nope'), h), { code: 'MALFORMED_MESSAGE' });
  t.throws(() => decodePayload(new Uint8Array([0x92, 0x01])), { code: 'MALFORMED_MESSAGE' });
});

t.test('tensors survive unaligned byte offsets', async (t) => {
  const values = Float32Array.of(1.5, -2, 3.25);
  const backing = new Uint8Array(13);
  backing.set(new Uint8Array(values.buffer), 1); // offset 1: a Float32Array view would throw
  const out = tensorToArray({ dtype: 'float32', shape: [3], data: backing.subarray(1) });
  t.same(Array.from(out as Float32Array), [1.5, -2, 3.25]);
  const round = tensorToArray(arrayToTensor('int32', [2], Int32Array.of(7, -9)));
  t.same(Array.from(round as Int32Array), [7, -9]);
});

t.test('a tensor whose bytes do not match its shape is refused', async (t) => {
  t.throws(() => tensorToArray({ dtype: 'float32', shape: [2, 2], data: new Uint8Array(12) }), { code: 'BAD_REQUEST', message: /needs 16 bytes/ });
  t.throws(() => tensorToArray({ dtype: 'float32', shape: [3], data: [1, 2] }), { code: 'BAD_REQUEST' });
  t.same(Array.from(tensorToArray({ dtype: 'float32', shape: [2], data: [1, 2] }) as Float32Array), [1, 2]);
});

t.test('Content-Type: its name in any case; a decode error says what came and what to send', async (t) => {
  const body = new TextEncoder().encode('{"task":"digit-classification"}');
  const lower = headers();
  lower.set('content-type', 'application/json');
  t.same(decodePayload(body, lower), { task: 'digit-classification' }, 'a lower-case header name is read');
  t.throws(() => decodePayload(body), { code: 'MALFORMED_MESSAGE', message: /no Content-Type header and the payload looks like JSON: send it with the header "Content-Type: application\/json"/ });
  const text = headers();
  text.set('Content-Type', 'text/plain');
  t.throws(() => decodePayload(new Uint8Array([0x92, 0x01]), text), { message: /Content-Type "text\/plain" is neither application\/json nor application\/msgpack/ });
  const deadline = headers();
  deadline.set('infaas-deadline', '12345');
  t.equal(headerEpochMs(deadline, 'Infaas-Deadline'), 12345, 'Infaas-Deadline in any case');
});
