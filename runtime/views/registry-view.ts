// An in-memory view of models, variants and profiles, fed by KV watches (never polled).
// A restarted process rebuilds it from the buckets' current values.
import type { KV } from 'nats';
import { Type, type TSchema } from '@sinclair/typebox';
import { ModelRecord, ProfileRecord, VariantRecord } from '../../schemas/registry.js';
import type { Logger } from '../log.js';
import type { Stores } from '../bus/store.js';
import { watchInto } from '../bus/kv-watch.js';

export interface VariantWithProfiles extends VariantRecord {
  profiles: Record<string, ProfileRecord>;
}

type Listener = (bucket: 'models' | 'variants' | 'profiles', key: string) => void;

/** A registration's claim on a name (actors/registrar/effects.ts) until validation writes the full record. */
const ModelClaim = Type.Object({
  name: Type.String(), status: Type.Literal('validating'), registrar: Type.String(), createdAt: Type.Number(), updatedAt: Type.Number(),
}, { additionalProperties: false });
const ModelEntry = Type.Union([ModelRecord, ModelClaim]);

export class RegistryView {
  readonly models = new Map<string, ModelRecord>();
  readonly variants = new Map<string, VariantRecord>();
  /** key: "<variant id>.<hardware class>" */
  readonly profiles = new Map<string, ProfileRecord>();
  private readonly stops: (() => void)[] = [];
  private readonly listeners = new Set<Listener>();

  constructor(private readonly log: Logger) {}

  /** Starts the watches and resolves once every bucket's current values are loaded. */
  async start(stores: Stores): Promise<void> {
    await Promise.all([
      this.watch(stores, stores.models, 'models', this.models, ModelEntry),
      this.watch(stores, stores.variants, 'variants', this.variants, VariantRecord),
      this.watch(stores, stores.profiles, 'profiles', this.profiles, ProfileRecord),
    ]);
  }

  stop(): void {
    for (const s of this.stops.splice(0)) s();
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async watch<T>(stores: Stores, kv: KV, bucket: 'models' | 'variants' | 'profiles', map: Map<string, T>, schema: TSchema): Promise<void> {
    this.stops.push(await watchInto(kv, bucket, map, this.log, (key) => { for (const l of this.listeners) l(bucket, key); }, { schema, nc: stores.nc }));
  }

  modelsByTask(task?: string): ModelRecord[] {
    return [...this.models.values()].filter((m) => !task || m.task === task).sort((a, b) => a.name.localeCompare(b.name));
  }

  variantsOf(model: string): VariantWithProfiles[] {
    const byVariant = new Map<string, Record<string, ProfileRecord>>();
    for (const p of this.profiles.values()) {
      if (p.model !== model) continue;
      byVariant.set(p.variant, { ...byVariant.get(p.variant), [p.hardwareClass]: p });
    }
    const out: VariantWithProfiles[] = [];
    for (const v of this.variants.values()) {
      if (v.model === model) out.push({ ...v, profiles: byVariant.get(v.id) ?? {} });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }
}
