// Tensor wire types: {dtype, shape, data}; data is raw little-endian bytes (MessagePack) or numbers
// (JSON); or {dtype, shape, ref} when the bytes wait in the blobs Object Store bucket (claim check).
import { Type, type Static } from '@sinclair/typebox';
import { buckets } from '../subjects/index.js';
import { DTYPES } from './dtypes.js';

export { DTYPES };
export const DType = Type.Union(DTYPES.map((d) => Type.Literal(d)), { $id: 'DType' });
export type DType = Static<typeof DType>;

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4, float64: 8, int8: 1, uint8: 1, int32: 4, int64: 8,
};

export const Tensor = Type.Object(
  {
    dtype: DType,
    shape: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 8 }),
    data: Type.Union([Type.Uint8Array(), Type.Array(Type.Number())], {
      description: 'raw little-endian bytes (MessagePack bin) or, in JSON, a flat number array',
    }),
  },
  { $id: 'Tensor', additionalProperties: false },
);
export type Tensor = Static<typeof Tensor>;

/**
 * Where a tensor's raw little-endian bytes wait in the blobs Object Store bucket (claim check): for
 * tensors beyond the bus's max payload. `bytes` is the object's size, shape x dtype.
 */
export const BlobRef = Type.Object(
  {
    /** The only bucket a reference may name; absent means it. */
    bucket: Type.Optional(Type.Literal(buckets.blobs)),
    object: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' }),
    bytes: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
  },
  { $id: 'BlobRef', additionalProperties: false },
);
export type BlobRef = Static<typeof BlobRef>;

/**
 * A tensor sent by reference: dtype and shape travel in the message (a dispatcher predicts latency
 * from them without the bytes), the bytes wait in the blobs bucket.
 */
export const TensorRef = Type.Object(
  {
    dtype: DType,
    shape: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 8 }),
    ref: BlobRef,
  },
  { $id: 'TensorRef', additionalProperties: false },
);
export type TensorRef = Static<typeof TensorRef>;

/** A tensor as queries and answers carry it: inline bytes (or numbers), or a reference. */
export const WireTensor = Type.Union([Tensor, TensorRef], { $id: 'WireTensor' });
export type WireTensor = Static<typeof WireTensor>;

export function isTensorRef(t: WireTensor): t is TensorRef {
  return (t as Partial<TensorRef>).ref !== undefined;
}

/**
 * Named tensors (a query's inputs): names of 1-128 characters without line breaks. TypeBox checks a
 * record's values only under keys its key pattern matches; additionalProperties:false refuses the
 * rest, so a name with a newline cannot carry an unchecked value (found by test/fuzz.test.ts).
 */
export const NamedTensors = Type.Record(Type.String({ pattern: '^.{1,128}$' }), Tensor, { additionalProperties: false });

/** Named tensors on the wire, each inline or by reference (query inputs, answer outputs). */
export const NamedWireTensors = Type.Record(Type.String({ pattern: '^.{1,128}$' }), WireTensor, { additionalProperties: false });

/**
 * A declared model input or output; null marks a dynamic dimension (the batch, or a size such as an
 * image's height). An empty shape is a scalar.
 */
export const TensorSpec = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    dtype: DType,
    shape: Type.Array(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]), { maxItems: 8 }),
    /**
     * The axis queries are batched on: 0 for most exports, 1 for a recurrent state [2, batch, 128],
     * null for a tensor that has none (a scalar or per-call setting, shared by a batch only when
     * every query gives the same value). Absent: axis 0 (records written before batch axes existed).
     */
    batchAxis: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 7 }), Type.Null()])),
  },
  { $id: 'TensorSpec', additionalProperties: false },
);
export type TensorSpec = Static<typeof TensorSpec>;
