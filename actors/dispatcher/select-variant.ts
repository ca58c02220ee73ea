// Pure policy: which variant, on which worker, serves a query — or why none can. A function of a
// metadata snapshot and the request only, so the live dispatcher, tests and the trace simulator
// share it. `selectVariant` answers from an index of the snapshot built once per snapshot object
// (select-index.ts); `selectVariantScan` is the same policy as a plain scan (select-scan.ts), kept as
// the reference the index must agree with; the types and shared pieces are in selection-model.ts.
export * from './selection-model.js';
export { selectVariantScan } from './select-scan.js';
export { indexSnapshot, selectVariant, type SnapshotIndex } from './select-index.js';
