// The tensor element types, without the schema library: the CLI's option parsers need them at start-up.
export const DTYPES = ['float32', 'float64', 'int8', 'uint8', 'int32', 'int64'] as const;
