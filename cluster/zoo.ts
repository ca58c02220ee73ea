// Registers the built-in zoo through the public client, skipping models already registered.
import type { RegistryEvent } from '../schemas/registry.js';
import type { RegistryClient } from '../runtime/client/registry-client.js';
import { ErrorCode, InfaasError } from '../schemas/errors.js';
import { zooModelBytes, zooModels, zooRequest, zooValidationSet } from '../zoo/index.js';

export interface ZooOutcome { name: string; outcome: 'registered' | 'already registered' | 'in progress elsewhere' }

export async function registerZoo(
  client: RegistryClient,
  options: { validationSamples?: number; onEvent?: (e: RegistryEvent) => void; only?: string[] } = {},
): Promise<ZooOutcome[]> {
  const existing = new Map((await client.models()).map((m) => [m.name, m]));
  const out: ZooOutcome[] = [];
  let validationObject: string | undefined;
  try {
    for (const m of zooModels()) {
      if (options.only && !options.only.includes(m.name)) continue;
      const prior = existing.get(m.name);
      if (prior) {
        out.push({ name: m.name, outcome: prior.status === 'registered' ? 'already registered' : 'in progress elsewhere' });
        continue;
      }
      validationObject ??= await client.upload(zooValidationSet(options.validationSamples), 'zoo validation split');
      const modelObject = await client.upload(zooModelBytes(m.name), `${m.name}.onnx`);
      try {
        await client.register(zooRequest(m, modelObject, validationObject), { onEvent: options.onEvent });
        out.push({ name: m.name, outcome: 'registered' });
      } catch (err) {
        // Two `infaas up` racing: the other one owns this model now.
        if (err instanceof InfaasError && err.code === ErrorCode.DuplicateModel) out.push({ name: m.name, outcome: 'in progress elsewhere' });
        else throw err;
      } finally {
        await client.deleteUpload(modelObject);
      }
    }
  } finally {
    if (validationObject) await client.deleteUpload(validationObject);
  }
  return out;
}
