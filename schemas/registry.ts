// Control-plane wire types for registration, model/variant metadata, profiles and their events.
import { Type, type Static } from '@sinclair/typebox';
import { TensorSpec } from './tensor.js';

/** A time as milliseconds since the Unix epoch (every timestamp in KV records and events). */
export const EpochMs = Type.Integer({ minimum: 0, description: 'milliseconds since the Unix epoch' });

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$', description: "letters, digits, '-', '_'" });
// Printable ASCII: nats.js names Object Store entries through btoa(name), which throws on characters
// past U+00FF and disagrees with other clients (UTF-8) on U+0080-U+00FF (found by test/fuzz.test.ts).
const ObjectName = Type.String({ minLength: 1, maxLength: 255, pattern: '^[ -~]+$' });

/**
 * How a model's accuracy is measured (chosen at registration, named wherever accuracy is shown).
 * top1/top5: classification against integer labels (argmax of the output's last axis). ctc:
 * greedy CTC decoding of a [batch, time, classes] output against label strings, with the charset
 * the validation set carries (class 0 the blank unless `blank` says otherwise); the figure is
 * exact-sequence accuracy. fidelity: no labels; each variant's outputs are compared with the
 * original fp32 model's on the validation inputs, and `agreement` names the figure that becomes the
 * variant's accuracy (times the declared accuracy of the model, 1 if none is declared).
 */
export const Metric = Type.Object(
  {
    kind: Type.Union([Type.Literal('top1'), Type.Literal('top5'), Type.Literal('ctc'), Type.Literal('fidelity')]),
    /** Which output the metric reads (default: the first). */
    output: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    /** ctc: the blank class index (default 0). */
    blank: Type.Optional(Type.Integer({ minimum: 0 })),
    /** fidelity: argmax (agreement of the last axis's argmax), iou (of the maps thresholded at `threshold`), cosine. */
    agreement: Type.Optional(Type.Union([Type.Literal('argmax'), Type.Literal('iou'), Type.Literal('cosine')])),
    /** fidelity with agreement iou: the threshold a map value must exceed (default 0.5). */
    threshold: Type.Optional(Type.Number()),
  },
  { $id: 'Metric', additionalProperties: false },
);
export type Metric = Static<typeof Metric>;

/** One sample's full shape (batch axis of size 1) per input with dynamic dimensions: a size to profile at. */
export const ProfileShape = Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Array(Type.Integer({ minimum: 1 }), { maxItems: 8 }));
export type ProfileShape = Static<typeof ProfileShape>;

/** A variant kind the generator did not make, and why (shown by the CLI, in events and in the model record). */
export const SkippedVariant = Type.Object(
  { kind: Type.String(), reason: Type.String() },
  { additionalProperties: false },
);
export type SkippedVariant = Static<typeof SkippedVariant>;

export const RegisterRequest = Type.Object(
  {
    name: Name,
    task: Name,
    dataset: Type.String({ minLength: 1, maxLength: 128 }),
    framework: Type.Literal('onnx'),
    object: ObjectName,
    /** Overrides of what the ONNX file says (names, dtypes, shapes, batch axes); absent: read from the file. */
    inputs: Type.Optional(Type.Array(TensorSpec, { minItems: 1, maxItems: 16 })),
    outputs: Type.Optional(Type.Array(TensorSpec, { minItems: 1, maxItems: 16 })),
    submitter: Type.String({ minLength: 1, maxLength: 128 }),
    validation: Type.Optional(Type.Object({ object: ObjectName }, { additionalProperties: false })),
    declaredAccuracy: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    metric: Type.Optional(Metric),
    /** Sizes to profile at, for inputs with dynamic dimensions besides the batch (default: the validation set's sample shapes). */
    shapes: Type.Optional(Type.Array(ProfileShape, { minItems: 1, maxItems: 8 })),
    /** Batch axis per input or output name (null: none), where the file's dimension names do not say. */
    batchAxes: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Union([Type.Integer({ minimum: 0, maximum: 7 }), Type.Null()]))),
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
    /** How accuracy is measured (absent: top1 with a validation set, declared without). */
    metric: Type.Optional(Metric),
    /** Sizes the variants are profiled at (one sample each, batch axis 1); absent: the declared shapes are fixed. */
    shapes: Type.Optional(Type.Array(ProfileShape)),
    /** False when the batch axes could not be established: every query runs alone. */
    batched: Type.Optional(Type.Boolean()),
    /** Why the model is served unbatched, when it is. */
    unbatchedReason: Type.Optional(Type.String()),
    /** Variant kinds the generator did not make, with reasons. */
    skipped: Type.Optional(Type.Array(SkippedVariant)),
    variants: Type.Array(Type.String()),
    registrar: Type.String(),
    createdAt: EpochMs,
    updatedAt: EpochMs,
  },
  { $id: 'ModelRecord', additionalProperties: false },
);
export type ModelRecord = Static<typeof ModelRecord>;

/** fp32 as registered; int8 dynamic (weights int8, activations quantised at run time); int8-static (QDQ, activation ranges calibrated on the validation set). */
export const Precision = Type.Union([Type.Literal('fp32'), Type.Literal('int8'), Type.Literal('int8-static')]);
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
    createdAt: EpochMs,
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

/** A variant's outputs compared with the original fp32 model's on the validation inputs. */
export const Fidelity = Type.Object(
  {
    samples: Type.Integer({ minimum: 0 }),
    /** The output compared (the metric's). */
    output: Type.String(),
    /** Share of rows (positions, for sequences) whose last-axis argmax agrees. */
    argmaxAgreement: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxAbsError: Type.Number({ minimum: 0 }),
    /** Mean |variant - reference| over the mean |reference|. */
    relError: Type.Number({ minimum: 0 }),
    cosine: Type.Number({ minimum: -1, maximum: 1 }),
    /** IoU of the two outputs thresholded at `threshold` (dense maps). */
    iou: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    threshold: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);
export type Fidelity = Static<typeof Fidelity>;

/** Latency at one profiled input size (the profile's `latency` is that of its largest size). */
export const SizedLatency = Type.Object(
  {
    shape: ProfileShape,
    /** Input elements per sample (every input, batch axis excluded): what predictions interpolate over. */
    elements: Type.Integer({ minimum: 0 }),
    latency: Type.Array(LatencyPoint),
  },
  { additionalProperties: false },
);
export type SizedLatency = Static<typeof SizedLatency>;

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
    /** Latency per profiled input size, ascending elements (models with dynamic sizes). */
    sizes: Type.Optional(Type.Array(SizedLatency)),
    accuracy: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** measured: the metric on labels; declared: the model's declared figure; fidelity: declared (or 1) x the variant's fidelity figure. */
    accuracySource: Type.Optional(Type.Union([Type.Literal('measured'), Type.Literal('declared'), Type.Literal('fidelity')])),
    /** The metric behind `accuracy` (top1, top5, ctc, fidelity:argmax, fidelity:iou, fidelity:cosine, declared). */
    metric: Type.Optional(Type.String()),
    /** Top-5 accuracy, when the metric is top1 or top5 and the output has at least 5 classes. */
    top5: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    fidelity: Type.Optional(Fidelity),
    validationSamples: Type.Optional(Type.Integer({ minimum: 0 })),
    error: Type.Optional(Type.String()),
    startedAt: EpochMs,
    finishedAt: Type.Optional(EpochMs),
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
  { variants: Type.Array(VariantRecord), skipped: Type.Optional(Type.Array(SkippedVariant)) },
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
    at: EpochMs,
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
    /** The query's id, on an error published to the result subject of a query that had one (docs/query.md). */
    id: Type.Optional(Type.String()),
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
