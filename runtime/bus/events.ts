// Publishes registry lifecycle events as one-line JSON on infaas.events.registry.<model>.
import type { NatsConnection } from 'nats';
import type { RegistryEvent, RegistryEventType } from '../../schemas/registry.js';
import { subjects } from '../../subjects/index.js';
import { encodeJson } from './codec.js';

export type EventFields = Omit<RegistryEvent, 'type' | 'model' | 'at' | 'message'>;

export function publishRegistryEvent(nc: NatsConnection, type: RegistryEventType, model: string, message: string, fields: EventFields = {}): void {
  if (nc.isClosed()) return;
  const event: RegistryEvent = { type, model, at: Date.now(), message, ...fields };
  nc.publish(subjects.events.model(model), encodeJson(event));
}
