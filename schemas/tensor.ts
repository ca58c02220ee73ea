// Tensor wire types: {dtype, shape, data}; data is raw little-endian bytes (MessagePack) or numbers (JSON).
import { Type, type Static } from '@sinclair/typebox';

export const DTYPES = ['float32', 'float64', 'int8', 'uint8', 'int32', 'int64'] as const;
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
 * Named tensors (a query's inputs): names of 1-128 characters without line breaks. TypeBox checks a
 * record's values only under keys its key pattern matches; additionalProperties:false refuses the
 * rest, so a name with a newline cannot carry an unchecked value (found by test/fuzz.test.ts).
 */
export const NamedTensors = Type.Record(Type.String({ pattern: '^.{1,128}$' }), Tensor, { additionalProperties: false });

/** A declared model input or output; null marks a dynamic dimension (the batch). */
export const TensorSpec = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    dtype: DType,
    shape: Type.Array(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]), { minItems: 1, maxItems: 8 }),
  },
  { $id: 'TensorSpec', additionalProperties: false },
);
export type TensorSpec = Static<typeof TensorSpec>;
