// The worker's control endpoints (JSON): load, unload, list instances, drain.
import type { Service } from 'nats';
import { EmptyRequest, LoadRequest, UnloadRequest, type InstanceRecord } from '../../schemas/worker.js';
import { subjects } from '../../subjects/index.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import type { Logger } from '../../runtime/log.js';
import { addJsonEndpoint } from '../../runtime/bus/service.js';
import type { VariantInstance } from '../instance/index.js';

export interface ControlDeps {
  workerId: string;
  log: Logger;
  /** Live instances (not unloaded or failed). */
  instances: () => VariantInstance[];
  startInstance: (variant: string) => VariantInstance;
  load: (variant: string) => Promise<VariantInstance>;
  record: (instance: VariantInstance) => InstanceRecord;
  draining: () => boolean;
  state: () => string;
  requestDrain: () => void;
}

export function addControlEndpoints(srv: Service, d: ControlDeps): void {
  const id = d.workerId;
  addJsonEndpoint(srv, {
    name: 'load', subject: subjects.worker.load(id), schema: LoadRequest,
    handle: async (req) => {
      if (d.draining()) throw new InfaasError(ErrorCode.WorkerDraining, `${id} is draining`);
      const present = req.ifAbsent ? d.instances().find((i) => i.spec.variant === req.variant && i.accepting) : undefined;
      if (present && req.noWait) return d.record(present);
      if (req.noWait) return d.record(d.startInstance(req.variant));
      return d.record(await d.load(req.variant));
    },
  }, d.log);
  addJsonEndpoint(srv, {
    name: 'unload', subject: subjects.worker.unload(id), schema: UnloadRequest,
    handle: async (req) => {
      if (!req.instance && !req.variant) throw new InfaasError(ErrorCode.BadRequest, 'name an instance or a variant to unload');
      const targets = d.instances().filter((i) => (req.instance && i.spec.id === req.instance) || (req.variant && i.spec.variant === req.variant));
      if (targets.length === 0) throw new InfaasError(ErrorCode.VariantNotLoaded, `nothing matching ${req.instance ?? req.variant} is loaded on ${id}`);
      await Promise.all(targets.map((i) => i.drain()));
      return { unloaded: targets.map((i) => i.spec.id) };
    },
  }, d.log);
  addJsonEndpoint(srv, {
    name: 'instances', subject: subjects.worker.instances(id), schema: EmptyRequest,
    handle: async () => ({ worker: id, state: d.state(), instances: d.instances().map(d.record) }),
  }, d.log);
  addJsonEndpoint(srv, {
    name: 'drain', subject: subjects.worker.drain(id), schema: EmptyRequest,
    handle: async () => {
      const live = d.instances();
      const inFlight = live.reduce((a, i) => a + i.inFlight, 0);
      d.requestDrain();
      return { worker: id, state: 'draining', instances: live.length, inFlight };
    },
  }, d.log);
}
