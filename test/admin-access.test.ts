// Only the operator role may use the console: with access control on, a controller serves
// infaas-admin, an operator calls it, and client, worker and controller credentials are refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startAdmin } from '../actors/admin/index.js';
import { credentialFile, ensureLocalCredentials, permissionDenied, resolveAccess } from '../runtime/bus/auth.js';
import { connectBus } from '../runtime/bus/nats.js';
import { silentLogger } from '../runtime/log.js';
import type { Role } from '../subjects/access.js';
import { subjects } from '../subjects/index.js';
import { connectTest, startTestNats } from './helpers/system.js';
import { rejectsWith } from './helpers/expect.js';

async function connectAs(t: Test, url: string, dataDir: string, role: Role) {
  const access = resolveAccess({ credentials: credentialFile(dataDir, role) }, role);
  if (role === 'client') {
    const nc = await connectBus({ servers: url, name: role, log: silentLogger, extra: access.options });
    t.teardown(() => nc.close());
    return { nc };
  }
  return connectTest(t, url, role, access.options);
}

t.test('the console is the operator role\'s alone', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'infaas-admin-access-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = await startTestNats(t, { auth: ensureLocalCredentials(dataDir) });
  const controller = await connectAs(t, server.url, dataDir, 'controller') as Awaited<ReturnType<typeof connectTest>>;
  const admin = await startAdmin({ nc: controller.nc, stores: controller.stores, log: silentLogger });
  t.teardown(() => admin.stop());

  const operator = await connectAs(t, server.url, dataDir, 'operator');
  const m = await operator.nc.request(subjects.admin.summary, new TextEncoder().encode('{}'), { timeout: 5000 });
  t.match(JSON.parse(new TextDecoder().decode(m.data)), { workers: [], instances: [], models: [] }, 'the operator gets a summary');
  const set = await operator.nc.request(subjects.admin.pause, new TextEncoder().encode('{"autoscaler":"vm-autoscaler"}'), { timeout: 5000 });
  t.same(JSON.parse(new TextDecoder().decode(set.data)), { autoscaler: 'vm-autoscaler', paused: true }, 'and may pause (the controller writes infaas_settings)');

  for (const role of ['client', 'worker', 'controller'] as const) {
    const c = await connectAs(t, server.url, dataDir, role);
    const p = c.nc.request(subjects.admin.pause, new TextEncoder().encode('{"autoscaler":"vm-autoscaler"}'), { timeout: 5000 });
    await rejectsWith(t, p.catch((e) => { throw permissionDenied(e) ?? e; }), 'PERMISSION_DENIED', `${role} may not pause`);
  }
});
