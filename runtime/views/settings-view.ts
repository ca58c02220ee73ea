// An in-memory view of the infaas_settings bucket (autoscaler settings and instance pins), fed by a
// KV watch: the actors read it each round, so a console change applies within one window. A record
// that does not match its schema (a stray `nats kv put`) is ignored with a warning, defaults stay.
import type { TSchema } from '@sinclair/typebox';
import { ModelAutoscalerSettings, PinRecord, VmAutoscalerSettings } from '../../schemas/admin.js';
import { isValid } from '../../schemas/validate.js';
import { keys } from '../../subjects/index.js';
import { watchInto } from '../bus/kv-watch.js';
import type { Stores } from '../bus/store.js';
import type { Logger } from '../log.js';

export class SettingsView {
  private readonly raw = new Map<string, unknown>();
  private readonly listeners = new Set<(key: string) => void>();
  private stopWatch?: () => void;

  constructor(private readonly log: Logger) {}

  async start(stores: Pick<Stores, 'settings' | 'nc'>): Promise<void> {
    this.stopWatch = await watchInto(stores.settings, 'settings', this.raw, this.log, (key) => {
      for (const l of this.listeners) l(key);
    }, { nc: stores.nc });
  }

  stop(): void {
    this.stopWatch?.();
    this.stopWatch = undefined;
  }

  onChange(listener: (key: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private typed<T>(key: string, schema: TSchema): T | undefined {
    const v = this.raw.get(key);
    if (v === undefined) return undefined;
    if (isValid(schema, v)) return v as T;
    this.log.warn({ key }, 'ignoring a settings record that does not match its schema');
    return undefined;
  }

  get vm(): VmAutoscalerSettings {
    return this.typed<VmAutoscalerSettings>(keys.autoscalerSettings('vm-autoscaler'), VmAutoscalerSettings) ?? {};
  }

  get model(): ModelAutoscalerSettings {
    return this.typed<ModelAutoscalerSettings>(keys.autoscalerSettings('model-autoscaler'), ModelAutoscalerSettings) ?? {};
  }

  isPinned(workerId: string, instanceId: string): boolean {
    return this.typed<PinRecord>(keys.pin(workerId, instanceId), PinRecord) !== undefined;
  }
}

/** The knobs of a settings record, without the console's own fields (paused, updatedAt). */
export function knobs<T extends { paused?: boolean; updatedAt?: number }>(record: T): Omit<T, 'paused' | 'updatedAt'> {
  const { paused: _p, updatedAt: _u, ...rest } = record;
  return rest;
}
