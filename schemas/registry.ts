// Control-plane wire types for registration, model/variant metadata, profiles and their events.
import { Type, type Static } from '@sinclair/typebox';
import { TensorSpec } from './tensor.js';

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$', description: "letters, digits, '-', '_'" });
// Printable ASCII: nats.js names Object Store entries through btoa(name), which throws on characters
// past U+00FF and disagrees with other clients (UTF-8) on U+0080-U+00FF (found by test/fuzz.test.ts).
const ObjectName = Type.String({ minLength: 1, maxLength: 255, pattern: '^[ -~]+$' });

export const RegisterRequest = Type.Object(
  {
    name: Name,
    task: Name,
    dataset: Type.String({ minLength: 1, maxLength: 128 }),
    framework: Type.Literal('onnx'),
    object: ObjectName,
    inputs: Type.Array(TensorSpec, { minItems: 1, maxItems: 16 }),
    outputs: Type.Array(TensorSpec, { minItems: 1, maxItems: 16 }),
    submitter: Type.String({ minLength: 1, maxLength: 128 }),
    validation: Type.Optional(Type.Object({ object: ObjectName }, { additionalProperties: false })),
    declaredAccuracy: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { $id: 'RegisterRequest', additionalProperties: false },
);
export type RegisterRequest = Static<typeof RegisterRequest>;

export const ModelStatus = Type.Union([
  Type.Literal('validating'), Type.Literal('generating'), Type.Literal('profiling'), Type.Literal('registered'),
]);
export type ModelStatus = Static<typeof ModelStatus>;

export const ModelRecord = Type.Object(
  {
    name: Name,
    task: Name,
    dataset: Type.String(),
    framework: Type.Literal('onnx'),
    inputs: Type.Array(TensorSpec),
    outputs: Type.Array(TensorSpec),
    submitter: Type.String(),
    description: Type.Optional(Type.String()),
    status: ModelStatus,
    /** Object Store name of the registered model file (owned by the registry). */
    object: Type.String(),
    sizeBytes: Type.Integer({ minimum: 0 }),
    validation: Type.Optional(Type.Object({ object: Type.String(), samples: Type.Integer({ minimum: 1 }) })),
    declaredAccuracy: Type.Optional(Type.Number()),
    variants: Type.Array(Type.String()),
    registrar: Type.String(),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { $id: 'ModelRecord', additionalProperties: false },
);
export type ModelRecord = Static<typeof ModelRecord>;

export const Precision = Type.Union([Type.Literal('fp32'), Type.Literal('int8')]);
export type Precision = Static<typeof Precision>;
export const OptLevel = Type.Union([Type.Literal('disabled'), Type.Literal('basic'), Type.Literal('extended'), Type.Literal('all')]);
export type OptLevel = Static<typeof OptLevel>;

export const VariantRecord = Type.Object(
  {
    id: Type.String({ description: '<model>.<suffix>; also its KV key' }),
    model: Name,
    task: Name,
    precision: Precision,
    /** ONNX Runtime graph optimisation level the session is created with. */
    optLevel: OptLevel,
    maxBatch: Type.Integer({ minimum: 1 }),
    intraOpThreads: Type.Integer({ minimum: 1 }),
    executionProvider: Type.String(),
    /** Object Store name of the variant's ONNX file (variants of one precision share a file). */
    object: Type.String(),
    sizeBytes: Type.Integer({ minimum: 1 }),
    createdAt: Type.String(),
  },
  { $id: 'VariantRecord', additionalProperties: false },
);
export type VariantRecord = Static<typeof VariantRecord>;

export const LatencyPoint = Type.Object(
  {
    batch: Type.Integer({ minimum: 1 }),
    p50Ms: Type.Number({ minimum: 0 }),
    p99Ms: Type.Number({ minimum: 0 }),
    meanMs: Type.Number({ minimum: 0 }),
    runs: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type LatencyPoint = Static<typeof LatencyPoint>;

export const ProfileRecord = Type.Object(
  {
    variant: Type.String(),
    model: Name,
    hardwareClass: Name,
    status: Type.Union([Type.Literal('running'), Type.Literal('done'), Type.Literal('failed'), Type.Literal('unsupported')]),
    worker: Type.String(),
    loadMs: Type.Optional(Type.Number({ minimum: 0 })),
    latency: Type.Optional(Type.Array(LatencyPoint)),
    /** Largest growth of the profiling process's resident memory over its value just before loading (sampled after load and after a run at the largest batch), and never less than the model's weight bytes. */
    peakMemoryBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    accuracy: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    accuracySource: Type.Optional(Type.Union([Type.Literal('measured'), Type.Literal('declared')])),
    validationSamples: Type.Optional(Type.Integer({ minimum: 0 })),
    error: Type.Optional(Type.String()),
    startedAt: Type.String(),
    finishedAt: Type.Optional(Type.String()),
  },
  { $id: 'ProfileRecord', additionalProperties: false },
);
export type ProfileRecord = Static<typeof ProfileRecord>;

export const ModelsRequest = Type.Object({ task: Type.Optional(Name) }, { $id: 'ModelsRequest', additionalProperties: false });
export type ModelsRequest = Static<typeof ModelsRequest>;
export const NameRequest = Type.Object({ name: Name }, { $id: 'NameRequest', additionalProperties: false });
export type NameRequest = Static<typeof NameRequest>;

export const GenerateRequest = Type.Object(
  { model: Name },
  { $id: 'GenerateRequest', additionalProperties: false },
);
export type GenerateRequest = Static<typeof GenerateRequest>;

export const GenerateReply = Type.Object(
  { variants: Type.Array(VariantRecord) },
  { $id: 'GenerateReply', additionalProperties: false },
);
export type GenerateReply = Static<typeof GenerateReply>;

export const RegistryEventType = [
  'registration.received', 'registration.validated', 'variants.generated', 'registration.progress', 'profile.started',
  'profile.progress', 'profile.finished', 'registration.completed', 'registration.failed', 'model.unregistered',
] as const;

export const RegistryEvent = Type.Object(
  {
    type: Type.Union(RegistryEventType.map((t) => Type.Literal(t))),
    model: Name,
    at: Type.String(),
    message: Type.String(),
    /** Fraction of the profiling work done, for progress bars. */
    progress: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    variant: Type.Optional(Type.String()),
    hardwareClass: Type.Optional(Type.String()),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    /**
     * The registration attempt a lifecycle event belongs to (the `registration` of its RegisterReply).
     * Two callers may register one name at once; each follows only its own attempt's events.
     */
    registration: Type.Optional(Type.String()),
  },
  { $id: 'RegistryEvent', additionalProperties: false },
);
export type RegistryEvent = Static<typeof RegistryEvent>;
export type RegistryEventType = (typeof RegistryEventType)[number];

export const ErrorReply = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      retryable: Type.Boolean(),
      /** On a retryable error: when a retry can expect to succeed, in ms from the answer. */
      retryAfterMs: Type.Optional(Type.Number({ minimum: 0 })),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorReply' },
);

export const RegisterReply = Type.Object(
  {
    model: Name,
    status: ModelStatus,
    /** Subject that carries this registration's progress events (`nats sub` it). */
    events: Type.String(),
    /** Identifies this attempt: its lifecycle events on `events` carry the same `registration`. */
    registration: Type.String(),
  },
  { $id: 'RegisterReply', additionalProperties: false },
);
export type RegisterReply = Static<typeof RegisterReply>;
