// Lifecycle of one registration: received -> validating -> generating -> profiling -> registered | failed.
// An operator's cancel.requested while generating or profiling rolls it back like a failure.
// Effects are named here and supplied by effects.ts through .provide(); no I/O imports.
import { assign, fromPromise, setup } from 'xstate';
import type { ModelRecord, RegisterRequest, RegistryEventType, SkippedVariant, VariantRecord } from '../../schemas/registry.js';

export interface FailureInfo { code: string; message: string }

export interface RegistrationContext {
  request: RegisterRequest;
  model?: ModelRecord;
  variants: VariantRecord[];
  error?: FailureInfo;
}

/** What the generator made, and each variant kind it did not make with the reason. */
export interface Generated { variants: VariantRecord[]; skipped: SkippedVariant[] }

/** The variants.generated message: the count, then every kind not made and why. */
export function generatedMessage(g: Generated): string {
  const skipped = g.skipped.map((s) => `${s.kind} (${s.reason})`).join('; ');
  return `${g.variants.length} variants generated${skipped ? `; not generated: ${skipped}` : ''}`;
}

export interface ProfilingSummary { hardwareClass: string; profiled: number; unsupported: number }

/** The operator cancelled it (infaas-admin cancel): the failure its rollback reports. */
export const CANCELLED: FailureInfo = Object.freeze({ code: 'CANCELLED', message: 'cancelled by the operator' });

export type RegistrationEvent = { type: 'cancel.requested' };

export type RegistrationOutput =
  | { status: 'registered'; model: ModelRecord; variants: VariantRecord[] }
  | { status: 'failed'; error: FailureInfo };

function failure(err: unknown): FailureInfo {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'INTERNAL',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}


export const registrationMachine = setup({
  types: {
    context: {} as RegistrationContext,
    input: {} as { request: RegisterRequest },
    output: {} as RegistrationOutput,
    events: {} as RegistrationEvent,
  },
  actors: {
    /** Claims the name, checks object/model/signature/validation set, copies them into the repository. */
    validate: fromPromise<ModelRecord, { request: RegisterRequest }>(async () => { throw new Error('validate not provided'); }),
    generate: fromPromise<Generated, { model: ModelRecord }>(async () => { throw new Error('generate not provided'); }),
    awaitProfiles: fromPromise<ProfilingSummary, { model: ModelRecord; variants: VariantRecord[] }>(async () => { throw new Error('awaitProfiles not provided'); }),
    complete: fromPromise<ModelRecord, { model: ModelRecord }>(async () => { throw new Error('complete not provided'); }),
    rollback: fromPromise<void, { name: string }>(async () => { throw new Error('rollback not provided'); }),
  },
  actions: {
    /** Answers the register request: accepted (validation passed) or refused with the error. */
    accept: (_, _params: { model: ModelRecord }) => {},
    reject: (_, _params: { error: FailureInfo }) => {},
    report: (_, _params: { type: RegistryEventType; message: string; error?: FailureInfo }) => {},
  },
}).createMachine({
  id: 'registration',
  context: ({ input }) => ({ request: input.request, variants: [] }),
  initial: 'received',
  states: {
    received: {
      entry: { type: 'report', params: ({ context }) => ({ type: 'registration.received', message: `registering ${context.request.name} for ${context.request.task}` }) },
      always: 'validating',
    },
    validating: {
      invoke: {
        src: 'validate',
        input: ({ context }) => ({ request: context.request }),
        onDone: {
          target: 'generating',
          actions: [
            assign({ model: ({ event }) => event.output }),
            { type: 'accept', params: ({ event }) => ({ model: event.output }) },
            { type: 'report', params: () => ({ type: 'registration.validated', message: 'model, signature and validation set accepted' }) },
          ],
        },
        // validate cleans up its own claim, so a refused request leaves nothing behind.
        onError: {
          target: 'failed',
          actions: [
            assign({ error: ({ event }) => failure(event.error) }),
            { type: 'reject', params: ({ event }) => ({ error: failure(event.error) }) },
          ],
        },
      },
    },
    generating: {
      invoke: {
        src: 'generate',
        input: ({ context }) => ({ model: context.model! }),
        onDone: {
          target: 'profiling',
          actions: [
            assign({ variants: ({ event }) => event.output.variants }),
            { type: 'report', params: ({ event }) => ({ type: 'variants.generated', message: generatedMessage(event.output) }) },
          ],
        },
        onError: { target: 'rollingBack', actions: assign({ error: ({ event }) => failure(event.error) }) },
      },
      on: { 'cancel.requested': { target: 'rollingBack', actions: assign({ error: () => ({ ...CANCELLED }) }) } },
    },
    profiling: {
      invoke: {
        src: 'awaitProfiles',
        input: ({ context }) => ({ model: context.model!, variants: context.variants }),
        onDone: 'completing',
        onError: { target: 'rollingBack', actions: assign({ error: ({ event }) => failure(event.error) }) },
      },
      on: { 'cancel.requested': { target: 'rollingBack', actions: assign({ error: () => ({ ...CANCELLED }) }) } },
    },
    completing: {
      invoke: {
        src: 'complete',
        input: ({ context }) => ({ model: context.model! }),
        onDone: { target: 'registered', actions: assign({ model: ({ event }) => event.output }) },
        onError: { target: 'rollingBack', actions: assign({ error: ({ event }) => failure(event.error) }) },
      },
    },
    registered: {
      type: 'final',
      entry: { type: 'report', params: ({ context }) => ({ type: 'registration.completed', message: `${context.request.name} registered with ${context.variants.length} profiled variants` }) },
    },
    rollingBack: {
      invoke: {
        src: 'rollback',
        input: ({ context }) => ({ name: context.request.name }),
        onDone: 'failed',
        onError: 'failed',
      },
    },
    failed: {
      type: 'final',
      entry: {
        type: 'report',
        params: ({ context }) => ({ type: 'registration.failed', message: `registration of ${context.request.name} failed: ${context.error?.message ?? 'unknown'}`, error: context.error }),
      },
    },
  },
  output: ({ context }) =>
    context.error
      ? { status: 'failed', error: context.error }
      : { status: 'registered', model: context.model!, variants: context.variants },
});
