// Client library for the registry: upload files, register (following progress events), list, inspect.
import { customAlphabet } from 'nanoid';
import type { NatsConnection } from 'nats';
import type { ModelRecord, RegisterReply, RegisterRequest, RegistryEvent } from '../../schemas/registry.js';
import { objects, subjects } from '../../subjects/index.js';
import { decodeJson, encodeJson } from '../bus/codec.js';
import { ErrorCode, InfaasError, type ErrorBody } from '../../schemas/errors.js';
import type { VariantWithProfiles } from '../views/registry-view.js';
import { putObject, type Stores } from '../bus/store.js';
import { permissionDenied } from '../bus/auth.js';

// Upload names are subject/key tokens: alphanumeric only (nanoid's default alphabet may lead with '-').
const uploadId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 16);

export interface ModelInfo { model: ModelRecord; variants: VariantWithProfiles[] }

export interface RegisterOptions {
  onEvent?: (e: RegistryEvent) => void;
  /** How long to wait for the whole registration (validation, generation, profiling). */
  timeoutMs?: number;
}

export class RegistryClient {
  constructor(private readonly nc: NatsConnection, private readonly stores: Stores, private readonly requestTimeoutMs = 60_000) {}

  private async call<T>(subject: string, body: unknown): Promise<T> {
    let reply;
    try {
      reply = await this.nc.request(subject, encodeJson(body), { timeout: this.requestTimeoutMs });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'PERMISSIONS_VIOLATION') throw permissionDenied(err)!;
      if (code === '503') throw new InfaasError(ErrorCode.NoProfiler, `nothing serves ${subject}: is the controller running? (infaas up / infaas controller)`);
      if (code === 'TIMEOUT') throw new InfaasError(ErrorCode.Timeout, `${subject} did not answer within ${this.requestTimeoutMs} ms`);
      throw err;
    }
    const data = decodeJson(reply.data);
    if (reply.headers?.get('Nats-Service-Error-Code')) throw InfaasError.fromBody(data as ErrorBody);
    return data as T;
  }

  /** Uploads bytes to the repository under a fresh uploads/ name and returns that name. */
  async upload(bytes: Uint8Array, label = 'file'): Promise<string> {
    const name = objects.upload(uploadId());
    await putObject(this.stores.repository, name, bytes, label);
    return name;
  }

  async deleteUpload(name: string): Promise<void> {
    await this.stores.repository.delete(name).catch(() => undefined);
  }

  /** Sends the request only (answers once validation passed); progress follows on reply.events. */
  submit(request: RegisterRequest): Promise<RegisterReply> {
    return this.call<RegisterReply>(subjects.registry.register, request);
  }

  /**
   * Registers and waits for the outcome; throws the registration's error if it fails. Only this
   * attempt's events count: another caller's refused attempt at the same name publishes on the
   * same subject, so events are held until the reply names this attempt, then filtered by it.
   */
  async register(request: RegisterRequest, options: RegisterOptions = {}): Promise<ModelInfo> {
    const timeoutMs = options.timeoutMs ?? 30 * 60_000;
    const early: RegistryEvent[] = [];
    let take = (e: RegistryEvent) => { early.push(e); };
    const sub = this.nc.subscribe(subjects.events.model(request.name), {
      callback: (err, m) => {
        if (err) return;
        // Anyone may publish here: what is not an event is ignored, never thrown into nats.js.
        let e: RegistryEvent;
        try { e = decodeJson(m.data) as RegistryEvent; } catch { return; }
        if (e !== null && typeof e === 'object' && typeof e.type === 'string') take(e);
      },
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const reply = await this.submit(request);
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new InfaasError(ErrorCode.Timeout, `no outcome for ${request.name} within ${timeoutMs} ms`)), timeoutMs);
        take = (e) => {
          // Profiling events come from profilers and carry no attempt id; they concern the one claimed name.
          if (e.registration !== undefined && e.registration !== reply.registration) return;
          // A throwing listener must not escape into nats.js (it would stop reading the connection).
          try { options.onEvent?.(e); } catch (err) { reject(err); return; }
          if (e.type === 'registration.completed') resolve();
          if (e.type === 'registration.failed') {
            reject(new InfaasError((e.error?.code as ErrorCode) ?? ErrorCode.Internal, e.error?.message ?? e.message));
          }
        };
        for (const e of early.splice(0)) take(e);
      });
      return await this.info(request.name);
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
  }

  async models(task?: string): Promise<ModelRecord[]> {
    return (await this.call<{ models: ModelRecord[] }>(subjects.registry.models, task ? { task } : {})).models;
  }

  info(name: string): Promise<ModelInfo> {
    return this.call<ModelInfo>(subjects.registry.info, { name });
  }

  unregister(name: string): Promise<{ removed: { variants: number; profiles: number; objects: number } }> {
    return this.call(subjects.registry.unregister, { name });
  }
}
