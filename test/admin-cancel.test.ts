// Cancelling a registration in progress from the console (`nats req infaas.admin.cancel`): it rolls
// back like a failure, leaving no record, variant or file, whichever controller's console answers;
// what is not in progress gets a specific code.
import { appendFileSync } from 'node:fs';
import t from 'tap';
import { startAdmin } from '../actors/admin/index.js';
import { kvKeys } from '../runtime/bus/store.js';
import { silentLogger } from '../runtime/log.js';
import type { RegistryEvent } from '../schemas/registry.js';
import { subjects } from '../subjects/index.js';
import { fastProfiler, startTestSystem } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';

const text = new TextDecoder();

// "forwarded": the console that answers runs no registrar (another controller's does), so it
// forwards the cancel to the registrar that owns the registration.
for (const mode of ['local', 'forwarded'] as const) t.test(`cancel rolls a registration back while it profiles (${mode})`, async (t) => {
  // Slow profiling (2 s per batch size) keeps the registration in its profiling step long enough.
  const sys = await startTestSystem(t, { measure: { ...fastProfiler.measure, minTimeMs: 2000, maxRuns: 1_000_000 } });
  const admin = await startAdmin({ nc: sys.nc, stores: sys.stores, log: silentLogger, ...(mode === 'local' ? { registrar: sys.registrar } : {}) });
  t.teardown(() => admin.stop());
  const req = async (body: string) => {
    const m = await sys.nc.request(subjects.admin.cancel, new TextEncoder().encode(body), { timeout: 30_000 });
    return { json: JSON.parse(text.decode(m.data)), error: m.headers?.get('Nats-Service-Error-Code') || undefined };
  };

  t.match(await req('{"name":"mlp-small"}'), { json: { error: { code: 'REGISTRATION_NOT_FOUND' } }, error: '404' }, 'nothing in progress yet');

  const events: RegistryEvent[] = [];
  let generated!: () => void;
  const profiling = new Promise<void>((resolve) => { generated = resolve; });
  const registration = registerZooModel(sys.client, 'mlp-small', new Proxy(events, {
    get: (target, p) => p === 'push' ? (e: RegistryEvent) => { if (e.type === 'variants.generated') generated(); return target.push(e); } : Reflect.get(target, p),
  }));
  const outcome = registration.then(() => 'registered', (err: { code?: string }) => err.code);
  await profiling;

  const cancelled = await req('{"name":"mlp-small"}');
  t.same(cancelled.json, { model: 'mlp-small', cancelled: true, from: 'profiling' });
  t.equal(await outcome, 'CANCELLED', 'the registering client learns why');
  t.match(events.find((e) => e.type === 'registration.failed'), { error: { code: 'CANCELLED', message: 'cancelled by the operator' } });
  // Example output for docs/operations.md, when asked for.
  if (process.env.INFAAS_CONSOLE_EXAMPLES && mode === 'local') {
    appendFileSync(process.env.INFAAS_CONSOLE_EXAMPLES, `### nats req infaas.admin.cancel '{"name":"mlp-small"}'\n${JSON.stringify(cancelled.json)}\n\n### nats sub 'infaas.events.registry.>' (last)\n${JSON.stringify(events.at(-1))}\n\n`);
  }
  t.same(await kvKeys(sys.stores.models), [], 'no model record');
  t.same(await kvKeys(sys.stores.variants), [], 'no variant records');
  const files = (await sys.stores.repository.list()).filter((o) => !o.deleted && /^(models|variants)\/mlp-small\//.test(o.name));
  t.same(files.map((f) => f.name), [], 'no model or variant files');
  t.match(await req('{"name":"mlp-small"}'), { json: { error: { code: 'REGISTRATION_NOT_FOUND' } } }, 'a second cancel finds nothing');
  t.match(await req('{"name":"bad name"}'), { json: { error: { code: 'BAD_REQUEST' } } });
});
