// Registers zoo models through the public client, with a small validation prefix for speed.
import type { RegistryEvent } from '../../schemas/registry.js';
import type { RegistryClient, ModelInfo } from '../../runtime/client/registry-client.js';
import { zooModelBytes, zooModels, zooRequest, zooValidationSet } from '../../zoo/index.js';

export const VALIDATION_SAMPLES = 300;

export async function registerZooModel(client: RegistryClient, name: string, events: RegistryEvent[] = [], rename?: string): Promise<ModelInfo> {
  const m = zooModels().find((z) => z.name === name)!;
  const object = await client.upload(zooModelBytes(name));
  const validation = await client.upload(zooValidationSet(VALIDATION_SAMPLES));
  try {
    return await client.register({ ...zooRequest(m, object, validation), ...(rename ? { name: rename } : {}) }, { onEvent: (e) => events.push(e) });
  } finally {
    await client.deleteUpload(object);
    await client.deleteUpload(validation);
  }
}

/**
 * registerZooModel against a controller started in another process, which may still be
 * subscribing: "nothing serves" is retried every 200 ms, up to 100 times.
 */
export async function registerZooModelWhenServed(client: RegistryClient, name: string, tries = 100): Promise<ModelInfo> {
  for (let i = 0; ; i++) {
    try {
      return await registerZooModel(client, name);
    } catch (err) {
      if (i >= tries || !/nothing serves/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
