// The operator's console (infaas-admin): requests, the summary reply, and the policy settings and
// pins kept in the infaas_settings bucket. Control plane, one-line JSON (docs/operations.md).
import { Type, type Static } from '@sinclair/typebox';

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' });

export const AutoscalerName = Type.Union([Type.Literal('vm-autoscaler'), Type.Literal('model-autoscaler')]);
export type AutoscalerName = Static<typeof AutoscalerName>;

/** infaas_settings key "vm-autoscaler": the controller's VM-autoscaler; absent fields keep their defaults. */
export const VmAutoscalerSettings = Type.Object(
  {
    /** While true the autoscaler makes no decisions (it keeps watching, so resuming acts on fresh numbers). */
    paused: Type.Optional(Type.Boolean()),
    busyUtilisation: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    idleUtilisation: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    scaleInAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
    cooldownMs: Type.Optional(Type.Integer({ minimum: 0 })),
    minWorkers: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    maxWorkers: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** Epoch milliseconds of the last change. */
    updatedAt: Type.Optional(Type.Number()),
  },
  { $id: 'VmAutoscalerSettings', additionalProperties: false },
);
export type VmAutoscalerSettings = Static<typeof VmAutoscalerSettings>;

/** infaas_settings key "model-autoscaler": every worker's model-autoscaler; absent fields keep their defaults. */
export const ModelAutoscalerSettings = Type.Object(
  {
    paused: Type.Optional(Type.Boolean()),
    headroom: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    scaleDownAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
    unloadIdleAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
    cooldownMs: Type.Optional(Type.Integer({ minimum: 0 })),
    accuracyTolerance: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    upgradeLoadFactor: Type.Optional(Type.Number({ minimum: 1 })),
    switches: Type.Optional(Type.Boolean()),
    updatedAt: Type.Optional(Type.Number()),
  },
  { $id: 'ModelAutoscalerSettings', additionalProperties: false },
);
export type ModelAutoscalerSettings = Static<typeof ModelAutoscalerSettings>;

/** infaas_settings key "pin.<worker>.<instance>": the worker's model-autoscaler never unloads it for idleness. */
export const PinRecord = Type.Object(
  { worker: Name, instance: Name, variant: Type.Optional(Type.String()), pinnedAt: Type.Number() },
  { $id: 'PinRecord', additionalProperties: false },
);
export type PinRecord = Static<typeof PinRecord>;

export const SummaryRequest = Type.Object(
  { model: Type.Optional(Name) },
  { $id: 'SummaryRequest', additionalProperties: false },
);
export type SummaryRequest = Static<typeof SummaryRequest>;

export const AutoscalerRequest = Type.Object(
  { autoscaler: AutoscalerName },
  { $id: 'AutoscalerRequest', additionalProperties: false },
);
export type AutoscalerRequest = Static<typeof AutoscalerRequest>;

export const SettingsGetRequest = Type.Object(
  { autoscaler: Type.Optional(AutoscalerName) },
  { $id: 'SettingsGetRequest', additionalProperties: false },
);
export type SettingsGetRequest = Static<typeof SettingsGetRequest>;

/** Keys are checked against the autoscaler's settings: an unknown one is refused (UNKNOWN_SETTING). */
export const SettingsSetRequest = Type.Object(
  {
    autoscaler: AutoscalerName,
    values: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Boolean()]), { minProperties: 1 }),
  },
  { $id: 'SettingsSetRequest', additionalProperties: false },
);
export type SettingsSetRequest = Static<typeof SettingsSetRequest>;

export const PinRequest = Type.Object(
  { worker: Name, instance: Name },
  { $id: 'PinRequest', additionalProperties: false },
);
export type PinRequest = Static<typeof PinRequest>;

export const CancelRequest = Type.Object(
  { name: Name },
  { $id: 'CancelRequest', additionalProperties: false },
);
export type CancelRequest = Static<typeof CancelRequest>;

const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

export const ModelSummary = Type.Object(
  {
    model: Type.String(),
    instances: Type.Integer({ minimum: 0 }),
    /** Queries answered per second, and those answered within their deadline, over `windowMs`. */
    throughput: Type.Number({ minimum: 0 }),
    goodput: Type.Number({ minimum: 0 }),
    answered: Type.Integer({ minimum: 0 }),
    /** Queries that missed (or could not make) their deadline over `windowMs`. */
    misses: Type.Integer({ minimum: 0 }),
    /** 99th percentile of observed batch run times (ms), weighted by runs; null without runs. */
    p99Ms: Nullable(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type ModelSummary = Static<typeof ModelSummary>;

/** infaas_summary key "<model>": a model's line of the summary, rewritten by the controllers every few seconds. */
export const ModelSummaryRecord = Type.Composite(
  [ModelSummary, Type.Object({ at: Type.Number(), windowMs: Type.Number({ minimum: 0 }), controller: Type.String() })],
  { $id: 'ModelSummaryRecord', additionalProperties: false },
);
export type ModelSummaryRecord = Static<typeof ModelSummaryRecord>;

export const SummaryReply = Type.Object(
  {
    at: Type.Number(),
    /** The span the rates cover: the last minute, or since this controller started watching if less. */
    windowMs: Type.Number({ minimum: 0 }),
    autoscalers: Type.Object({ 'vm-autoscaler': Type.Object({ paused: Type.Boolean() }), 'model-autoscaler': Type.Object({ paused: Type.Boolean() }) }),
    workers: Type.Array(Type.Object({
      id: Type.String(), hardwareClass: Type.String(), state: Type.String(), threads: Type.Integer(), cpuCores: Type.Number(),
      instances: Type.Integer(), queued: Type.Integer(), qps: Type.Number(), heartbeatAt: Type.Number(),
    })),
    instances: Type.Array(Type.Object({
      worker: Type.String(), id: Type.String(), variant: Type.String(), model: Type.String(), state: Type.String(), reason: Type.Optional(Type.String()),
      queueLength: Type.Integer(), arrivalRate: Type.Number(), serviceRate: Type.Number(), deadlineMisses: Type.Integer(), pinned: Type.Boolean(),
    })),
    models: Type.Array(ModelSummary),
  },
  { $id: 'SummaryReply' },
);
export type SummaryReply = Static<typeof SummaryReply>;
