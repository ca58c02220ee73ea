// Worker-side routing: which instance takes a forwarded query. Follows an autoscaler switch for
// unpinned queries, prefers the least busy serving replica, else a loading one that will be ready
// in time, else loads one when the dispatcher asked for it.
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import type { VariantInstance } from '../instance/index.js';
import type { Router } from './inference.js';
import type { InstanceRegistry } from './registry.js';

export function createRouter(workerId: string, registry: InstanceRegistry, isDraining: () => boolean, known: (variant: string) => boolean): Router {
  return {
    get draining() { return isDraining(); },
    route: (requested, { load, pinned }, deadline, now) => {
      const variant = pinned ? requested : registry.current(requested);
      // One pass, nothing allocated per query: the least busy serving replica (an interfered or
      // overloaded one only when it is also the least busy), else the loading one ready soonest.
      let serving: VariantInstance | undefined;
      let loading: VariantInstance | undefined;
      for (const i of registry.instances.values()) {
        if (i.spec.variant !== variant || !i.accepting) continue;
        if (i.serving) { if (!serving || work(i) < work(serving)) serving = i; } else if (!loading || i.readyInMs(now) < loading.readyInMs(now)) loading = i;
      }
      if (serving) return serving;
      const inst = loading ?? (load ? registry.start(variant) : undefined);
      if (!inst) {
        if (!known(variant)) throw new InfaasError(ErrorCode.VariantNotFound, `variant ${variant} is not in the registry`, { variant });
        throw new InfaasError(ErrorCode.VariantNotLoaded, `variant ${variant} is not loaded on ${workerId}; send load: true to load it`, { variant, worker: workerId });
      }
      const wait = inst.readyInMs(now);
      if (now + wait + inst.latencyMs(1) > deadline) {
        throw new InfaasError(ErrorCode.InstanceLoading, `${variant} is loading on ${workerId}, ready in ~${wait.toFixed(0)} ms: later than this query's deadline`, { variant, worker: workerId, readyInMs: wait, retryAfterMs: wait });
      }
      return inst;
    },
  };
}

function work(i: VariantInstance): number {
  return i.queueLength + i.inFlight;
}
