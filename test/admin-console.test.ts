// The operator's console over the wire, as the `nats` CLI uses it (docs/operations.md): plain JSON
// requests on infaas.admin.*, micro discovery on $SRV.*, a real server, registrar, worker,
// dispatcher and VM-autoscaler. Pauses stop decisions, pins keep idle instances, settings reach the actors.
import { appendFileSync } from 'node:fs';
import t from 'tap';
import { pino } from 'pino';
import type { NatsConnection } from 'nats';
import { startAdmin } from '../actors/admin/index.js';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { startVmAutoscaler } from '../actors/vm-autoscaler/index.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { silentLogger } from '../runtime/log.js';
import { subjects } from '../subjects/index.js';
import { loadSplit } from '../zoo/data.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';

const text = new TextDecoder();

interface Reply { json: Record<string, any>; code?: string }

/** What `nats req SUBJECT 'BODY'` does: the body bytes as typed, no headers; the reply must be JSON. */
async function req(nc: NatsConnection, subject: string, body = '{}'): Promise<Reply> {
  const m = await nc.request(subject, new TextEncoder().encode(body), { timeout: 5000 });
  const raw = text.decode(m.data);
  const json = JSON.parse(raw) as Record<string, any>;
  example(`nats req ${subject} '${body}'`, raw);
  return { json, ...(m.headers?.get('Nats-Service-Error-Code') ? { code: json.error?.code } : {}) };
}

/** Example output for docs/operations.md, written only when INFAAS_CONSOLE_EXAMPLES names a file. */
function example(command: string, output: string): void {
  if (process.env.INFAAS_CONSOLE_EXAMPLES) appendFileSync(process.env.INFAAS_CONSOLE_EXAMPLES, `### ${command}\n${output}\n\n`);
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('the console answers readable JSON and steers the actors', async (t) => {
  const sys = await startTestSystem(t);
  const info = await registerZooModel(sys.client, 'mlp-small');
  const [a, b] = info.variants.filter((v) => v.maxBatch === 8).map((v) => v.id);
  const worker = await startTestWorker(t, sys, { autoscale: true, monitor: { windowMs: 250 } });
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  const admin = await startAdmin({ nc: sys.nc, stores: sys.stores, log: silentLogger, registrar: sys.registrar, summaryEveryMs: 300 });
  t.teardown(() => admin.stop());
  const started: string[] = [];
  const provisioner = { start: async (c: string) => { started.push(c); return `w-new-${started.length}`; }, stop: async () => {}, managed: () => [] };
  // What the VM-autoscaler says: a pause reaches it by a KV watch, and its log is where it tells it has seen one.
  const vmSaid: string[] = [];
  const vmLog = pino({ level: 'info' }, { write: (line: string) => { vmSaid.push(String(JSON.parse(line).msg)); } });
  const vm = await startVmAutoscaler({
    nc: sys.nc, stores: sys.stores, log: vmLog, controllerId: 'c1', provisioner, classes: ['cpu-test'], windowMs: 200,
    settings: { minWorkers: 1, maxWorkers: 4, cooldownMs: 0 },
  });
  t.teardown(() => vm.stop());
  const decisions: string[] = [];
  const sub = sys.nc.subscribe(subjects.events.cluster, { callback: (_e, m) => decisions.push(JSON.parse(text.decode(m.data)).message) });
  t.teardown(() => sub.unsubscribe());
  const events = new Map<string, string>();
  const all = sys.nc.subscribe('infaas.events.>', { callback: (_e, m) => { const raw = text.decode(m.data); const ty = `${m.subject.split('.')[2]} ${JSON.parse(raw).type}`; if (!events.has(ty)) events.set(ty, raw); } });
  t.teardown(() => { all.unsubscribe(); for (const [ty, raw] of events) example(`nats sub 'infaas.events.>' (first ${ty})`, raw); });

  const instA = await worker.load(a!);
  const instB = await worker.load(b!);

  t.test('micro discovery: nats micro ls|info|stats infaas-admin', async (t) => {
    const ping = await req(sys.nc, '$SRV.PING.infaas-admin', '');
    t.match(ping.json, { name: 'infaas-admin', type: 'io.nats.micro.v1.ping_response' });
    const inf = await req(sys.nc, '$SRV.INFO.infaas-admin', '');
    t.same(inf.json.endpoints.map((e: { name: string }) => e.name).sort(), ['cancel', 'pause', 'pin', 'resume', 'settings-get', 'settings-set', 'summary', 'unpin']);
    t.ok(inf.json.endpoints.every((e: { subject: string }) => e.subject.startsWith('infaas.admin.')));
  });

  t.test('summary: workers, instances with states, per-model numbers over the last minute', async (t) => {
    const qc = new QueryClient(sys.nc);
    const { images } = loadSplit('validation', 1);
    for (let i = 0; i < 20; i++) await qc.query({ variant: a!, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], images) }, slo: { latencyMs: 1000 } });
    let last: unknown;
    const s = await until('20 answers in the summary', async () => {
      const r = await req(sys.nc, subjects.admin.summary, '{}');
      last = r.json.models;
      return r.json.models?.[0]?.answered >= 20 ? r.json : undefined;
    }).catch((err) => { t.comment(JSON.stringify(last)); throw err; });
    t.ok(s.windowMs > 0 && s.windowMs <= 60_000);
    t.same(s.workers.map((w: { id: string }) => w.id), [worker.id]);
    t.same(s.instances.map((i: { id: string }) => i.id).sort(), [instA.spec.id, instB.spec.id].sort());
    t.ok(s.instances.every((i: { state: string; pinned: boolean }) => i.state === 'active' && i.pinned === false));
    const m = s.models[0];
    t.match(m, { model: 'mlp-small', instances: 2, misses: 0 });
    t.ok(m.throughput > 0 && m.goodput === m.throughput, `throughput ${m.throughput} q/s, goodput ${m.goodput}`);
    t.ok(m.p99Ms > 0, `p99 ${m.p99Ms} ms`);
    t.same(s.autoscalers, { 'vm-autoscaler': { paused: false }, 'model-autoscaler': { paused: false } });
    const one = await req(sys.nc, subjects.admin.summary, '{"model":"nope"}');
    t.same(one.json.models, []);
    // What `nats kv get infaas_summary mlp-small --raw` shows: the same line, rewritten every few seconds.
    const rec = await until('the summary record in KV', async () => {
      const e = await sys.stores.summary.get('mlp-small');
      const v = e && e.value.length > 0 ? JSON.parse(text.decode(e.value)) : undefined;
      return v?.answered >= 20 ? { v, raw: text.decode(e!.value) } : undefined;
    });
    t.match(rec.v, { model: 'mlp-small', instances: 2, answered: 20, misses: 0, controller: admin.id });
    t.ok(rec.v.at > 0 && rec.v.windowMs > 0 && rec.v.p99Ms > 0);
    example('nats kv get infaas_summary mlp-small --raw', rec.raw);
  });

  t.test('settings: get, set, every refusal a specific code', async (t) => {
    const all = await req(sys.nc, subjects.admin.settingsGet, '{}');
    t.match(all.json.autoscalers, [{ autoscaler: 'vm-autoscaler', settings: { paused: false, maxWorkers: 8 } }, { autoscaler: 'model-autoscaler', settings: { unloadIdleAfterMs: 120_000 } }]);
    const unknown = await req(sys.nc, subjects.admin.settingsSet, '{"autoscaler":"vm-autoscaler","values":{"maxWorker":3}}');
    t.equal(unknown.code, 'UNKNOWN_SETTING');
    t.match(unknown.json.error.message, /vm-autoscaler has no setting "maxWorker"; it has: paused, busyUtilisation/);
    const range = await req(sys.nc, subjects.admin.settingsSet, '{"autoscaler":"model-autoscaler","values":{"headroom":2}}');
    t.equal(range.code, 'INVALID_SETTING');
    t.match(range.json.error.message, /headroom/);
    t.equal((await req(sys.nc, subjects.admin.settingsSet, '{"autoscaler":"gpu-autoscaler","values":{"x":1}}')).code, 'BAD_REQUEST');
    t.equal((await req(sys.nc, subjects.admin.pause, 'not json')).code, 'MALFORMED_MESSAGE');
    const set = await req(sys.nc, subjects.admin.settingsSet, '{"autoscaler":"vm-autoscaler","values":{"maxWorkers":4}}');
    t.match(set.json, { autoscaler: 'vm-autoscaler', settings: { maxWorkers: 4, minWorkers: 1 }, stored: { maxWorkers: 4 } });
    const stats = await req(sys.nc, '$SRV.STATS.infaas-admin', '');
    const ep = stats.json.endpoints.find((e: { name: string }) => e.name === 'settings-set');
    t.match(ep, { num_requests: 4, num_errors: 3 }, 'nats micro stats counts the error replies');
  });

  t.test('pause stops the VM-autoscaler deciding; resume restarts it', async (t) => {
    await until('the vm-autoscaler leads', () => vm.leading || undefined);
    t.same((await req(sys.nc, subjects.admin.pause, '{"autoscaler":"vm-autoscaler"}')).json, { autoscaler: 'vm-autoscaler', paused: true });
    // The windows below test a pause the autoscaler has seen, not the watch's delivery time.
    await until('the vm-autoscaler has seen the pause', () => vmSaid.some((m) => m.includes('paused from the console')) || undefined);
    const mitigation = () => sys.nc.publish(subjects.events.worker(worker.id), new TextEncoder().encode(JSON.stringify({
      type: 'mitigation.requested', worker: worker.id, at: Date.now(), message: 'test: needs capacity elsewhere',
    })));
    // A negative can only be observed for a while: ten windows of requests that would each scale out.
    for (let i = 0; i < 10; i++) { mitigation(); await new Promise((r) => setTimeout(r, 200)); }
    t.same(decisions, [], 'no decisions while paused');
    t.same(started, []);
    t.same((await req(sys.nc, subjects.admin.summary, '{}')).json.autoscalers['vm-autoscaler'], { paused: true });
    await req(sys.nc, subjects.admin.resume, '{"autoscaler":"vm-autoscaler"}');
    await until('a decision after resume', () => { mitigation(); return decisions.length > 0 || undefined; });
    t.match(decisions[0], /^scale-out cpu-test/);
    t.same(started, ['cpu-test']);
  });

  t.test('a pinned idle instance stays loaded; settings and pauses reach the model-autoscaler', async (t) => {
    t.equal((await req(sys.nc, subjects.admin.pin, '{"worker":"nope","instance":"i-1"}')).code, 'INSTANCE_NOT_FOUND');
    const pin = await req(sys.nc, subjects.admin.pin, JSON.stringify({ worker: worker.id, instance: instA.spec.id }));
    t.match(pin.json, { worker: worker.id, instance: instA.spec.id, variant: a, pinned: true });
    await req(sys.nc, subjects.admin.pause, '{"autoscaler":"model-autoscaler"}');
    await req(sys.nc, subjects.admin.settingsSet, '{"autoscaler":"model-autoscaler","values":{"unloadIdleAfterMs":300,"cooldownMs":0}}');
    for (let i = 0; i < 8; i++) await new Promise((r) => setTimeout(r, 250));
    t.equal(instB.state, 'active', 'paused: the idle instance stays');
    await req(sys.nc, subjects.admin.resume, '{"autoscaler":"model-autoscaler"}');
    await until('the unpinned idle instance unloaded', () => (instB.state === 'unloaded' ? true : undefined));
    t.equal(instA.state, 'active', 'the pinned one stays loaded');
    const s = (await req(sys.nc, subjects.admin.summary, '{}')).json;
    t.match(s.instances.find((i: { id: string }) => i.id === instA.spec.id), { pinned: true });
    t.match((await req(sys.nc, subjects.admin.unpin, JSON.stringify({ worker: worker.id, instance: instA.spec.id }))).json, { pinned: false });
    await until('the unpinned instance unloaded', () => (instA.state === 'unloaded' ? true : undefined));
    t.equal((await req(sys.nc, subjects.admin.unpin, JSON.stringify({ worker: worker.id, instance: instA.spec.id }))).code, 'INSTANCE_NOT_FOUND');
    // A pin goes with its instance, however it is unloaded (here by the operator; the autoscaler waits).
    await req(sys.nc, subjects.admin.settingsSet, '{"autoscaler":"model-autoscaler","values":{"unloadIdleAfterMs":600000}}');
    const instC = await worker.load(a!);
    const pinC = JSON.stringify({ worker: worker.id, instance: instC.spec.id });
    await until('instance C pinned', async () => ((await req(sys.nc, subjects.admin.pin, pinC)).code === undefined ? true : undefined));
    await worker.unload(instC.spec.id);
    await until('the pin removed with its instance', async () => ((await sys.stores.settings.get(`pin.${worker.id}.${instC.spec.id}`))?.operation !== 'PUT' ? true : undefined));
    for (const key of ['vm-autoscaler', 'model-autoscaler']) example(`nats kv get infaas_settings ${key} --raw`, text.decode((await sys.stores.settings.get(key))!.value));
  });
});
