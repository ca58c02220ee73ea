// Data-plane wire types: model-less queries and their results (MessagePack by default, JSON accepted).
import { Type, type Static } from '@sinclair/typebox';
import { NamedWireTensors, type Tensor } from './tensor.js';

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' });

export const Slo = Type.Object(
  {
    latencyMs: Type.Number({ exclusiveMinimum: 0, maximum: 600_000 }),
    minAccuracy: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxCostPerQuery: Type.Optional(Type.Number({ minimum: 0 })),
    /**
     * When no variant can ever meet the objective: "refuse" (default) answers INFEASIBLE with what is
     * achievable; "closest" serves the fastest variant that meets the accuracy floor (the paper's
     * behaviour) and says so in the answer's `note`.
     */
    onInfeasible: Type.Optional(Type.Union([Type.Literal('refuse'), Type.Literal('closest')])),
  },
  { $id: 'Slo', additionalProperties: false },
);
export type Slo = Static<typeof Slo>;

export const Query = Type.Object(
  {
    id: Type.Optional(Type.String({ maxLength: 128 })),
    /** Each inline, or by reference to the blobs bucket when too big for one message (docs/query.md, "Big tensors"). */
    inputs: NamedWireTensors,
    task: Type.Optional(Name),
    model: Type.Optional(Name),
    variant: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\\.[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' })),
    slo: Slo,
    /** Where to publish the answer instead of replying; must start with "infaas.results.". */
    resultSubject: Type.Optional(Type.String({ pattern: '^infaas\\.results\\.[A-Za-z0-9_.-]+$', maxLength: 256 })),
  },
  { $id: 'Query', additionalProperties: false, description: 'exactly one of task, model or variant' },
);
export type Query = Static<typeof Query>;

export const QueryResult = Type.Object(
  {
    id: Type.Optional(Type.String()),
    /** Each inline, or by reference to the blobs bucket when the answer would not fit in one message. */
    outputs: NamedWireTensors,
    model: Name,
    variant: Type.String(),
    worker: Type.String(),
    hardwareClass: Type.String(),
    timings: Type.Object({ queueMs: Type.Number(), inferenceMs: Type.Number(), totalMs: Type.Number() }),
    cost: Type.Number({ minimum: 0 }),
    /** Set when the answer is not what the query asked for (slo.onInfeasible "closest"). */
    note: Type.Optional(Type.String()),
  },
  { $id: 'QueryResult', additionalProperties: false },
);
/** An answer as it crosses the wire: an output may be a reference to the blobs bucket. */
export type WireQueryResult = Static<typeof QueryResult>;
/** An answer as an instance produces it and QueryClient returns it: every output inline. */
export type QueryResult = Omit<WireQueryResult, 'outputs'> & { outputs: Record<string, Tensor> };
