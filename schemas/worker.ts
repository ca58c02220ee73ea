// Worker wire types: the worker record and instance stats in KV, control requests, forwarded
// inference requests and the worker's events. Control plane JSON; inference MessagePack by default.
import { Type, type Static } from '@sinclair/typebox';
import { NamedWireTensors } from './tensor.js';
import { EpochMs } from './registry.js';

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' });
const VariantId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\\.[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' });

export const WorkerState = Type.Union([Type.Literal('ready'), Type.Literal('draining')]);
export type WorkerState = Static<typeof WorkerState>;

export const WorkerRecord = Type.Object(
  {
    id: Name,
    host: Type.String(),
    pid: Type.Integer(),
    hardwareClass: Name,
    /** Hourly price of this worker (currency units per hour); cost per query derives from it. */
    pricePerHour: Type.Number({ minimum: 0 }),
    capacity: Type.Object({
      /** Cores this worker may use (instances reserve their intra-op threads from this budget). */
      threads: Type.Integer({ minimum: 1 }),
      memoryBytes: Type.Integer({ minimum: 0 }),
    }, { additionalProperties: false }),
    state: WorkerState,
    usage: Type.Object({
      /** Process CPU over the last window, in cores (2.0 = two cores busy). */
      cpuCores: Type.Number({ minimum: 0 }),
      /** Whole host's CPU busy fraction over the last window (0..1), hogs included. */
      hostCpu: Type.Number({ minimum: 0 }),
      rssBytes: Type.Integer({ minimum: 0 }),
      threadsReserved: Type.Integer({ minimum: 0 }),
      memoryReserved: Type.Integer({ minimum: 0 }),
      instances: Type.Integer({ minimum: 0 }),
      queued: Type.Integer({ minimum: 0 }),
      qps: Type.Number({ minimum: 0 }),
      /** Measured fetch speed of inputs by reference from the blobs bucket (ms per MiB); absent until one is fetched. */
      blobFetchMsPerMiB: Type.Optional(Type.Number({ minimum: 0 })),
    }, { additionalProperties: false }),
    startedAt: EpochMs,
    /** Epoch milliseconds of the latest heartbeat; readers treat a record older than a few windows as dead. */
    heartbeatAt: EpochMs,
  },
  { $id: 'WorkerRecord', additionalProperties: false },
);
export type WorkerRecord = Static<typeof WorkerRecord>;

export const InstanceState = Type.Union([
  Type.Literal('loading'), Type.Literal('active'), Type.Literal('overloaded'), Type.Literal('interfered'),
  Type.Literal('draining'), Type.Literal('unloaded'), Type.Literal('failed'),
]);
export type InstanceState = Static<typeof InstanceState>;

export const ObservedLatency = Type.Object(
  { batch: Type.Integer({ minimum: 1 }), observedMs: Type.Number({ minimum: 0 }), profiledMs: Type.Number({ minimum: 0 }), runs: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);
export type ObservedLatency = Static<typeof ObservedLatency>;

export const InstanceRecord = Type.Object(
  {
    id: Name,
    worker: Name,
    variant: VariantId,
    model: Name,
    hardwareClass: Name,
    state: InstanceState,
    /** Why the state is what it is (the monitor's numbers, a load error). */
    reason: Type.Optional(Type.String()),
    threads: Type.Integer({ minimum: 1 }),
    maxBatch: Type.Integer({ minimum: 1 }),
    memoryBytes: Type.Integer({ minimum: 0 }),
    /** Queries waiting and queries in the running batch. */
    queueLength: Type.Integer({ minimum: 0 }),
    inFlight: Type.Integer({ minimum: 0 }),
    /**
     * Over the last window: arrivals in rows per second (a query of n rows counts n, like the
     * capacity), answers per second, deadline misses, mean rows per batch.
     */
    arrivalRate: Type.Number({ minimum: 0 }),
    serviceRate: Type.Number({ minimum: 0 }),
    deadlineMisses: Type.Integer({ minimum: 0 }),
    /** The window the rates and misses cover (ms); absent on records written at a state change (rates 0). */
    windowMs: Type.Optional(Type.Number({ minimum: 0 })),
    meanBatch: Type.Number({ minimum: 0 }),
    latency: Type.Array(ObservedLatency),
    /** Profiled queries per second at full batches (0 when this class has no profile yet). */
    capacityQps: Type.Number({ minimum: 0 }),
    loadMs: Type.Optional(Type.Number({ minimum: 0 })),
    createdAt: EpochMs,
    updatedAt: EpochMs,
  },
  { $id: 'InstanceRecord', additionalProperties: false },
);
export type InstanceRecord = Static<typeof InstanceRecord>;

export const LoadRequest = Type.Object(
  {
    variant: VariantId,
    /** Reply as soon as loading starts instead of when the instance is active. */
    noWait: Type.Optional(Type.Boolean()),
    /** Start one only if no instance of the variant is loading or serving here (warm-ups from several controllers load once). */
    ifAbsent: Type.Optional(Type.Boolean()),
  },
  { $id: 'LoadRequest', additionalProperties: false },
);
export type LoadRequest = Static<typeof LoadRequest>;

export const UnloadRequest = Type.Object(
  {
    /** One instance, or every instance of a variant. */
    instance: Type.Optional(Name),
    variant: Type.Optional(VariantId),
  },
  { $id: 'UnloadRequest', additionalProperties: false },
);
export type UnloadRequest = Static<typeof UnloadRequest>;

export const EmptyRequest = Type.Object({}, { $id: 'EmptyRequest', additionalProperties: false });

/** A query forwarded to one worker (by the controller's dispatcher, or sent directly). */
export const InferRequest = Type.Object(
  {
    id: Type.Optional(Type.String({ maxLength: 128 })),
    variant: VariantId,
    /** Inline, or by reference to the blobs bucket (the worker fetches them before inference). */
    inputs: NamedWireTensors,
    /** Publish the answer here instead of replying; must start with "infaas.results.". */
    resultSubject: Type.Optional(Type.String({ pattern: '^infaas\\.results\\.[A-Za-z0-9_.-]+$', maxLength: 256 })),
    /** Start an instance of the variant if none is loaded (the dispatcher counted its load time). */
    load: Type.Optional(Type.Boolean()),
    /**
     * Only this exact variant will do (the user named it). Otherwise, when this worker's autoscaler
     * has switched the variant to another of the same model, the query is served by that one.
     */
    pinned: Type.Optional(Type.Boolean()),
    /** Copied into the answer: why it is not what the query asked for. */
    note: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { $id: 'InferRequest', additionalProperties: false },
);
export type InferRequest = Static<typeof InferRequest>;

export const WorkerEventType = [
  'worker.started', 'worker.draining', 'worker.stopped', 'instance.state', 'instance.evicted', 'autoscaler.decision', 'mitigation.requested',
  'instance.deadlines.missed',
] as const;
export type WorkerEventType = (typeof WorkerEventType)[number];

export const WorkerEvent = Type.Object(
  {
    type: Type.Union(WorkerEventType.map((t) => Type.Literal(t))),
    worker: Name,
    at: EpochMs,
    message: Type.String(),
    instance: Type.Optional(Type.String()),
    variant: Type.Optional(Type.String()),
    state: Type.Optional(Type.String()),
    /** The numbers a decision used (rates, capacities, load times). */
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { $id: 'WorkerEvent', additionalProperties: false },
);
export type WorkerEvent = Static<typeof WorkerEvent>;
