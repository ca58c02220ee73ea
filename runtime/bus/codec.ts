// One codec for the wire: MessagePack by default, JSON when Content-Type says so; tensors <-> typed arrays.
import { Packr } from 'msgpackr';
import { headers as natsHeaders, Match, type MsgHdrs } from 'nats';
import { BYTES_PER_ELEMENT, type DType, type Tensor } from '../../schemas/tensor.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';

export const CONTENT_TYPE = 'Content-Type';
export const JSON_TYPE = 'application/json';
export const MSGPACK_TYPE = 'application/msgpack';

// useRecords:false keeps the encoding plain MessagePack that any language's library can read.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * A message's headers; MALFORMED_MESSAGE when nats.js cannot parse them (a lone CR or LF, a key
 * byte outside '!'..'~'): its getter throws, and a handler that let that escape left the micro
 * service's own fallback reply to throw too, which stopped the connection reading.
 */
export function headersOf(msg: { readonly headers?: MsgHdrs }): MsgHdrs | undefined {
  try {
    return msg.headers;
  } catch (err) {
    throw new InfaasError(ErrorCode.MalformedMessage, `cannot parse the message headers: ${(err as Error).message}`);
  }
}

/** The Content-Type header, its name matched without regard to case ("content-type" from a CLI too); '' when absent. */
export function contentType(h?: MsgHdrs): string {
  return h?.get(CONTENT_TYPE, Match.IgnoreCase) ?? '';
}

export function isJson(h?: MsgHdrs): boolean {
  return contentType(h).toLowerCase().startsWith(JSON_TYPE);
}

/** A header carrying epoch milliseconds (deadlines, start times); absent is undefined, unreadable is BAD_REQUEST. */
export function headerEpochMs(h: MsgHdrs | undefined, name: string): number | undefined {
  const v = h?.get(name, Match.IgnoreCase);
  if (!v) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InfaasError(ErrorCode.BadRequest, `header ${name} must be epoch milliseconds, got "${v.slice(0, 40)}"`);
  return n;
}

/** Decodes a data-plane payload; malformed bytes become MALFORMED_MESSAGE. */
export function decodePayload(data: Uint8Array, h?: MsgHdrs): unknown {
  try {
    if (isJson(h)) return JSON.parse(textDecoder.decode(data));
    return packr.unpack(data);
  } catch (err) {
    throw new InfaasError(ErrorCode.MalformedMessage, `cannot decode ${isJson(h) ? 'JSON' : 'MessagePack'} payload: ${(err as Error).message}${contentTypeHint(data, h)}`);
  }
}

/**
 * Why a payload may have failed to decode: the Content-Type it came with (or none), and what the
 * bytes look like. A JSON body sent without `Content-Type: application/json` read as MessagePack
 * and failed with only "end of buffer not reached" (issue #12).
 */
function contentTypeHint(data: Uint8Array, h?: MsgHdrs): string {
  const ct = contentType(h);
  const given = ct ? `Content-Type "${ct.slice(0, 60)}"` : 'no Content-Type header';
  let i = 0;
  while (i < data.length && (data[i] === 0x20 || data[i] === 0x09 || data[i] === 0x0a || data[i] === 0x0d)) i++;
  const looksJson = data[i] === 0x7b || data[i] === 0x5b; // '{' or '['
  if (!isJson(h) && looksJson) return ` (the message has ${given} and the payload looks like JSON: send it with the header "${CONTENT_TYPE}: ${JSON_TYPE}")`;
  if (ct && !isJson(h) && !ct.toLowerCase().startsWith(MSGPACK_TYPE)) return ` (${given} is neither ${JSON_TYPE} nor ${MSGPACK_TYPE}: it was read as MessagePack)`;
  return ` (${given})`;
}

export function encodePayload(value: unknown, json = false): { data: Uint8Array; headers: MsgHdrs } {
  const h = natsHeaders();
  h.set(CONTENT_TYPE, json ? JSON_TYPE : MSGPACK_TYPE);
  return { data: json ? textEncoder.encode(JSON.stringify(value, jsonReplacer)) : packr.pack(value), headers: h };
}

/**
 * A data-plane error reply: the body `{error:{...}}` encoded like the request, and the micro-protocol
 * headers (`Nats-Service-Error-Code`, and `Nats-Service-Error` through the one sanitiser). `id`, the
 * query's, is given for an error published to a result subject: the body becomes `{id, error}`.
 */
export function encodeErrorReply(err: InfaasError, json = false, id?: string): { data: Uint8Array; headers: MsgHdrs } {
  const enc = encodePayload(id !== undefined ? { id, ...err.toBody() } : err.toBody(), json);
  enc.headers.set('Nats-Service-Error-Code', String(err.status));
  enc.headers.set('Nats-Service-Error', err.headerText);
  return enc;
}

export function packMsgpack(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function unpackMsgpack(data: Uint8Array): unknown {
  return packr.unpack(data);
}

/** Control plane: compact one-line JSON, readable with the nats CLI. */
export function encodeJson(value: unknown): Uint8Array {
  return textEncoder.encode(JSON.stringify(value, jsonReplacer));
}

export function decodeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(textDecoder.decode(data));
  } catch (err) {
    throw new InfaasError(ErrorCode.MalformedMessage, `control-plane messages are JSON: ${(err as Error).message}`);
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (typeof value === 'bigint') return Number(value);
  return value;
}

export type TypedArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array, int64: BigInt64Array,
} as const;

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * A wire tensor as a typed array. Bytes are copied: message data may start at an unaligned offset,
 * which Float32Array cannot view. Sizes are checked against the shape.
 */
export function tensorToArray(t: Tensor, what = 'tensor'): TypedArray {
  const n = elementCount(t.shape);
  const Ctor = ARRAYS[t.dtype];
  if (t.data instanceof Uint8Array) {
    const want = n * BYTES_PER_ELEMENT[t.dtype];
    if (t.data.byteLength !== want) {
      throw new InfaasError(ErrorCode.BadRequest, `${what}: shape [${t.shape.join(',')}] of ${t.dtype} needs ${want} bytes, got ${t.data.byteLength}`);
    }
    const copy = new Uint8Array(want);
    copy.set(t.data);
    return new Ctor(copy.buffer, 0, n);
  }
  if (t.data.length !== n) {
    throw new InfaasError(ErrorCode.BadRequest, `${what}: shape [${t.shape.join(',')}] needs ${n} numbers, got ${t.data.length}`);
  }
  if (t.dtype === 'int64') return BigInt64Array.from(t.data.map((v) => BigInt(Math.trunc(v))));
  return (Ctor as typeof Float32Array).from(t.data);
}

/** A tensor whose data is a number array, for JSON answers (raw bytes would read as byte values). */
export function tensorForJson(t: Tensor): Tensor {
  if (!(t.data instanceof Uint8Array)) return t;
  const values = tensorToArray(t);
  return { dtype: t.dtype, shape: [...t.shape], data: Array.from(values as ArrayLike<number | bigint>, Number) };
}

export function arrayToTensor(dtype: DType, shape: readonly number[], values: TypedArray): Tensor {
  return { dtype, shape: [...shape], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}
