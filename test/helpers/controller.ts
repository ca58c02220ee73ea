// A controller for tests: a dispatcher and a VM-autoscaler whose local provisioner starts real
// `infaas worker` processes of the test system's hardware class; its decisions are collected.
import { startDispatcher } from '../../actors/dispatcher/index.js';
import { startVmAutoscaler, type ClusterScalingSettings, type VmAutoscaler } from '../../actors/vm-autoscaler/index.js';
import { LocalProvisioner } from '../../cluster/provisioners.js';
import { decodeJson } from '../../runtime/bus/codec.js';
import { silentLogger } from '../../runtime/log.js';
import { subjects } from '../../subjects/index.js';
import type { TestSystem } from './system.js';

interface Teardown { teardown(fn: () => unknown): void }

export interface TestController { provisioner: LocalProvisioner; vm: VmAutoscaler; decisions: string[] }

export async function startTestController(t: Teardown, sys: Pick<TestSystem, 'nc' | 'stores' | 'url'>, settings: Partial<ClusterScalingSettings>): Promise<TestController> {
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  const provisioner = new LocalProvisioner({ natsUrl: sys.url, threads: 1, log: silentLogger, env: { INFAAS_LOG_LEVEL: 'warn' } });
  t.teardown(() => provisioner.close());
  const decisions: string[] = [];
  const sub = sys.nc.subscribe(subjects.events.cluster, { callback: (_e, m) => decisions.push((decodeJson(m.data) as { message: string }).message) });
  t.teardown(() => sub.unsubscribe());
  const vm = await startVmAutoscaler({
    nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1', provisioner, classes: ['cpu-test'], windowMs: 500,
    settings: { minWorkers: 1, maxWorkers: 2, ...settings },
  });
  t.teardown(() => vm.stop());
  return { provisioner, vm, decisions };
}
