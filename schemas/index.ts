// The wire types and their validators; `allSchemas` is what schemas/export.ts writes as JSON Schema.
import { Tensor, TensorSpec, DType, BlobRef, TensorRef, WireTensor } from './tensor.js';
import {
  RegisterRequest, ModelRecord, VariantRecord, ProfileRecord, ModelsRequest, NameRequest,
  GenerateRequest, GenerateReply, RegistryEvent, ErrorReply, RegisterReply,
} from './registry.js';
import { Query, QueryResult, Slo } from './query.js';
import { WorkerRecord, InstanceRecord, LoadRequest, UnloadRequest, EmptyRequest, InferRequest, WorkerEvent } from './worker.js';
import {
  VmAutoscalerSettings, ModelAutoscalerSettings, PinRecord, SummaryRequest, AutoscalerRequest, SettingsGetRequest, SettingsSetRequest,
  PinRequest, CancelRequest, SummaryReply, ModelSummaryRecord,
} from './admin.js';

export * from './tensor.js';
export * from './registry.js';
export * from './query.js';
export * from './worker.js';
export * from './admin.js';
export { validate, isValid } from './validate.js';

export const allSchemas = {
  DType, Tensor, TensorRef, BlobRef, WireTensor, TensorSpec, RegisterRequest, ModelRecord, VariantRecord, ProfileRecord, ModelsRequest,
  NameRequest, GenerateRequest, GenerateReply, RegistryEvent, ErrorReply, RegisterReply, Query, QueryResult, Slo,
  WorkerRecord, InstanceRecord, LoadRequest, UnloadRequest, EmptyRequest, InferRequest, WorkerEvent,
  VmAutoscalerSettings, ModelAutoscalerSettings, PinRecord, SummaryRequest, AutoscalerRequest, SettingsGetRequest, SettingsSetRequest,
  PinRequest, CancelRequest, SummaryReply, ModelSummaryRecord,
} as const;
