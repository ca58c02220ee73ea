// What a variant instance is given (its spec, session, options) and what it hands back (answers,
// window counters): the contract between the instance host, the worker and the monitor.
import type { QueryResult } from '../../schemas/query.js';
import type { TensorSpec } from '../../schemas/tensor.js';
import type { InfaasError } from '../../schemas/errors.js';
import type { Feed } from '../../runtime/onnx/threaded-session.js';
import type { CheckedInputs } from './inputs.js';
import { defaultAimdSettings, type AimdSettings, type BatchingMode } from './batching.js';
import type { SizedPoints } from './latency.js';

/** What the host needs from a loaded session (a ThreadedSession in production). */
export interface InstanceSession {
  readonly loadMs: number;
  run(feeds: Record<string, Feed>): Promise<{ outputs: Record<string, Feed>; ms: number; busyMs?: number }>;
  close(): Promise<void>;
  onExit(cb: (err?: Error) => void): void;
}

export interface InstanceSpec {
  id: string;
  variant: string;
  model: string;
  maxBatch: number;
  threads: number;
  memoryBytes: number;
  /** The model's inputs, each with its batch axis (runtime/onnx/batch-axes.ts, servingSpecs). */
  inputs: TensorSpec[];
  /** The model's outputs, split per query along their batch axes (absent: axis 0, as records before batch axes). */
  outputs?: TensorSpec[];
  /**
   * Whether queries may share a run: false for a model served unbatched, or when an output's batch
   * dimension is fixed or absent, since its bytes could not be split per query; default true.
   */
  batchQueries?: boolean;
  /**
   * This hardware class's profile: latency per batch size (at the largest profiled input size), load
   * time and, for a model profiled at several input sizes, latency per size (latency.ts predicts a
   * query's from its own size). Absent: not profiled yet.
   */
  profile?: { latency: { batch: number; p50Ms: number }[]; loadMs: number; sizes?: SizedPoints[] };
}

export interface InstanceOptions {
  /** Scheduling head-room kept when judging whether a query can still finish in time. */
  marginMs: number;
  /** A load (fetch, session, warm-up runs) that takes longer fails with MODEL_LOAD_FAILED. */
  loadTimeoutMs: number;
  /**
   * 'work-conserving' (default): batches of up to the variant's max batch (batching.ts,
   * decideBatch). 'aimd': Clipper's adaptive batching, a cap on the batch that grows while batches
   * meet their queries' objective and backs off when one does not (the clipper baseline's worker).
   */
  batching: BatchingMode;
  /** The AIMD step and backoff (used with batching 'aimd'); default defaultAimdSettings. */
  aimd: AimdSettings;
}

/**
 * What loading costs beyond the profiled session creation: starting the session thread and
 * importing ONNX Runtime in it (measured 70-170 ms on the 2-core dev VM) and fetching the file.
 */
export const SESSION_START_MS = 200;

export const defaultInstanceOptions: InstanceOptions = Object.freeze({
  marginMs: 0.5, loadTimeoutMs: 60_000, batching: 'work-conserving', aimd: defaultAimdSettings,
});

export type Outcome = { result: QueryResult } | { error: InfaasError };

export interface QueuedQuery {
  id?: string;
  checked: CheckedInputs;
  /** Absolute deadline and when the query entered the system, epoch ms. */
  deadline: number;
  startedAt: number;
  receivedAt: number;
  /** Copied into the answer (why it is not what the query asked for). */
  note?: string;
  /** The query named this variant: the model-autoscaler must not switch it away. */
  pinned?: boolean;
  answer: (outcome: Outcome) => void;
}

/** Counters of one monitoring window; taken (and reset) by the monitor. */
export interface InstanceWindow {
  ms: number;
  /** Rows that arrived (a query of n rows counts n), and queries answered. */
  arrivals: number;
  /** Of those, rows of queries that named this variant. */
  pinnedArrivals: number;
  /** Input elements per sample, summed over the rows that arrived (the size mix served; latency.ts). */
  arrivedElements: number;
  completions: number;
  /** Queries refused at admission (answered at once, not through the queue, so not in `completions`); each is also a deadline miss. */
  refusals: number;
  deadlineMisses: number;
  batches: number;
  rows: number;
  /** Observed inference times by batch size (rows). */
  latency: Map<number, number[]>;
  /**
   * The profile's prediction for each of those runs at its input size, in the same order: what the
   * monitor compares the observed times with (the profile's reference curve is the largest size's,
   * which a model served at smaller sizes would never reach).
   */
  predicted: Map<number, number[]>;
  queueLength: number;
}

