// Typed errors with stable codes; the same shape travels on the wire as {error:{code,message,retryable,details}}.

export const ErrorCode = {
  BadRequest: 'BAD_REQUEST',
  MalformedMessage: 'MALFORMED_MESSAGE',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  InvalidName: 'INVALID_NAME',
  ObjectNotFound: 'OBJECT_NOT_FOUND',
  ModelLoadFailed: 'MODEL_LOAD_FAILED',
  SignatureMismatch: 'SIGNATURE_MISMATCH',
  DuplicateModel: 'DUPLICATE_MODEL',
  ValidationSetInvalid: 'VALIDATION_SET_INVALID',
  /** A model input has dynamic sizes besides the batch and nothing says what sizes to profile at. */
  ShapesRequired: 'SHAPES_REQUIRED',
  ModelNotFound: 'MODEL_NOT_FOUND',
  ModelBusy: 'MODEL_BUSY',
  NoProfiler: 'NO_PROFILER',
  GenerationFailed: 'GENERATION_FAILED',
  ProfilingFailed: 'PROFILING_FAILED',
  Timeout: 'TIMEOUT',
  VariantNotFound: 'VARIANT_NOT_FOUND',
  VariantNotLoaded: 'VARIANT_NOT_LOADED',
  InstanceLoading: 'INSTANCE_LOADING',
  InvalidInput: 'INVALID_INPUT',
  DeadlineExceeded: 'DEADLINE_EXCEEDED',
  WorkerDraining: 'WORKER_DRAINING',
  NoCapacity: 'NO_CAPACITY',
  InferenceFailed: 'INFERENCE_FAILED',
  UnknownTask: 'UNKNOWN_TASK',
  Infeasible: 'INFEASIBLE',
  NoWorker: 'NO_WORKER',
  WorkerLost: 'WORKER_LOST',
  /** The NATS server refused this credential a publish or a subscription (runtime/bus/auth.ts). */
  PermissionDenied: 'PERMISSION_DENIED',
  /** Console (infaas-admin): a setting no autoscaler has, or a value out of its range. */
  UnknownSetting: 'UNKNOWN_SETTING',
  InvalidSetting: 'INVALID_SETTING',
  InstanceNotFound: 'INSTANCE_NOT_FOUND',
  /** Console: no registration of that name is in progress (it finished, failed, or never began). */
  RegistrationNotFound: 'REGISTRATION_NOT_FOUND',
  /** Console: the registration is in a step that cannot be cut short (validating); retry in a moment. */
  NotCancellable: 'NOT_CANCELLABLE',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Status numbers for the Nats-Service-Error-Code header (HTTP-like, as the micro protocol suggests). */
const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400, MALFORMED_MESSAGE: 400, PAYLOAD_TOO_LARGE: 413, INVALID_NAME: 400,
  OBJECT_NOT_FOUND: 404, MODEL_LOAD_FAILED: 422, SIGNATURE_MISMATCH: 422, DUPLICATE_MODEL: 409,
  VALIDATION_SET_INVALID: 422, SHAPES_REQUIRED: 422, MODEL_NOT_FOUND: 404, MODEL_BUSY: 409, NO_PROFILER: 503,
  GENERATION_FAILED: 500, PROFILING_FAILED: 500, TIMEOUT: 504, INTERNAL: 500,
  VARIANT_NOT_FOUND: 404, VARIANT_NOT_LOADED: 409, INSTANCE_LOADING: 503, INVALID_INPUT: 400, DEADLINE_EXCEEDED: 504,
  WORKER_DRAINING: 503, NO_CAPACITY: 507, INFERENCE_FAILED: 500,
  UNKNOWN_TASK: 404, INFEASIBLE: 422, NO_WORKER: 503, WORKER_LOST: 502, PERMISSION_DENIED: 403,
  UNKNOWN_SETTING: 400, INVALID_SETTING: 400, INSTANCE_NOT_FOUND: 404, REGISTRATION_NOT_FOUND: 404, NOT_CANCELLABLE: 409,
};

// Retryable: another worker, a later moment or a looser deadline can succeed.
const RETRYABLE = new Set<ErrorCode>([
  'NO_PROFILER', 'TIMEOUT', 'MODEL_BUSY', 'INTERNAL', 'VARIANT_NOT_LOADED', 'INSTANCE_LOADING', 'WORKER_DRAINING', 'NO_CAPACITY',
  'NO_WORKER', 'WORKER_LOST', 'NOT_CANCELLABLE',
]);

export interface ErrorBody {
  /** The query's id, on an error published to a query's result subject (docs/query.md). */
  id?: string;
  error: { code: ErrorCode; message: string; retryable: boolean; retryAfterMs?: number; details?: Record<string, unknown> };
}

export class InfaasError extends Error {
  readonly retryable: boolean;
  /** The id of the query this error answers, when it came on a result subject (ErrorBody.id). */
  queryId?: string;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'InfaasError';
    this.retryable = RETRYABLE.has(code);
  }

  get status(): number {
    return STATUS[this.code];
  }

  /** For a retryable error: when a retry can expect to succeed (details.retryAfterMs), in ms from the answer. */
  get retryAfterMs(): number | undefined {
    const v = this.details?.retryAfterMs;
    return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
  }

  /**
   * "CODE: message" for the Nats-Service-Error header: control characters (CR/LF make nats.js
   * throw BAD_HEADER, which killed processes answering a body with a newline) become spaces, and
   * the length is capped. The one place every error reply gets its header text.
   */
  get headerText(): string {
    return headerSafe(`${this.code}: ${this.message}`);
  }

  toBody(): ErrorBody {
    const after = this.retryable ? this.retryAfterMs : undefined;
    return { error: { code: this.code, message: this.message, retryable: this.retryable, ...(after !== undefined ? { retryAfterMs: after } : {}), ...(this.details ? { details: this.details } : {}) } };
  }

  static fromBody(body: ErrorBody): InfaasError {
    const known = Object.values(ErrorCode).includes(body.error.code) ? body.error.code : ErrorCode.Internal;
    const e = new InfaasError(known, body.error.message, body.error.details);
    if (typeof body.id === 'string') e.queryId = body.id;
    return e;
  }
}

/** Text fit for a NATS header value: control characters (CR/LF throw BAD_HEADER in nats.js) become spaces, length capped. */
export function headerSafe(text: string, max = 1000): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, max);
}

/** Any thrown value as an InfaasError; unknown failures become INTERNAL with their message kept. */
export function toInfaasError(err: unknown): InfaasError {
  if (err instanceof InfaasError) return err;
  if (err instanceof Error && (err as { code?: unknown }).code === 'INVALID_NAME') {
    return new InfaasError(ErrorCode.InvalidName, err.message);
  }
  return new InfaasError(ErrorCode.Internal, err instanceof Error ? err.message : String(err));
}
