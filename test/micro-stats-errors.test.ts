// `nats micro stats` counts every error answer per endpoint (issue #12): errors answered after an
// await, by the dispatcher, or by a worker straight to the client, each on the service that sent it.
// Stats are read as the CLI reads them: a plain request on $SRV.STATS.<name>, a JSON reply.
import t, { type Test as Tap } from 'tap';
import type { NatsConnection } from 'nats';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';
import { decodeJson, encodeJson, encodePayload } from '../runtime/bus/codec.js';
import { services, subjects } from '../subjects/index.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';

interface EndpointStats { name: string; num_requests: number; num_errors: number; last_error?: string; average_processing_time: number }

async function statsOf(t: Tap, nc: NatsConnection, service: string): Promise<Map<string, EndpointStats>> {
  const m = await nc.request(`$SRV.STATS.${service}`, new Uint8Array(), { timeout: 5000 });
  const s = decodeJson(m.data) as { type: string; endpoints: EndpointStats[] };
  t.equal(s.type, 'io.nats.micro.v1.stats_response', `${service}: a micro stats reply`);
  return new Map(s.endpoints.map((e) => [e.name, e]));
}

const isError = (h: { get(k: string): string } | undefined): boolean => Boolean(h?.get('Nats-Service-Error-Code'));

t.test('num_errors counts every error answered, per endpoint and per service', async (t) => {
  const sys = await startTestSystem(t);
  const worker = await startTestWorker(t, sys);
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  const { nc } = sys;

  // Registry: malformed JSON (refused before the handler) and a valid-looking request that fails after an await.
  const REG = 7;
  for (let i = 0; i < REG; i++) {
    const body = i % 2 === 0 ? new TextEncoder().encode('{nope') : encodeJson({ name: `m${i}`, task: 't', dataset: 'd', framework: 'onnx', object: 'missingobject', submitter: 'test', declaredAccuracy: 0.9 });
    const m = await nc.request(subjects.registry.register, body, { timeout: 10_000 });
    t.ok(isError(m.headers), `register ${i}: an error reply`);
  }
  // Dispatcher: queries for a task nobody serves, half answered on a result subject.
  const Q = 6;
  const results = nc.subscribe('infaas.results.stats-test', { max: Q / 2 });
  const query = (i: number) => encodePayload({ id: `q${i}`, task: 'nobody-does-this', slo: { latencyMs: 100 }, inputs: { x: { dtype: 'float32', shape: [1], data: [1] } }, ...(i % 2 ? { resultSubject: 'infaas.results.stats-test' } : {}) }, true);
  for (let i = 0; i < Q; i++) {
    const q = query(i);
    if (i % 2) { nc.publish(subjects.query, q.data, { headers: q.headers }); continue; }
    const m = await nc.request(subjects.query, q.data, { headers: q.headers, timeout: 5000 });
    t.ok(isError(m.headers), `query ${i}: an error reply`);
  }
  let published = 0;
  for await (const m of results) { t.ok(isError(m.headers)); published++; }
  t.equal(published, Q / 2, 'every query with a result subject got its error there');
  // Worker: direct inference requests for a variant it does not know, and one malformed body.
  const W = 4;
  for (let i = 0; i < W; i++) {
    const body = i === 0 ? new TextEncoder().encode('\u00c1\u00c1') : encodeJson({ variant: 'nope.v1', inputs: {} });
    const m = await nc.request(subjects.worker.infer(worker.id), body, { timeout: 5000, headers: encodePayload({}, true).headers });
    t.ok(isError(m.headers), `infer ${i}: an error reply`);
  }
  // A successful control request: no error counted there.
  await nc.request(subjects.worker.instances(worker.id), encodeJson({}), { timeout: 5000 });

  const reg = await statsOf(t, nc, services.registry);
  t.equal(reg.get('register')?.num_errors, REG, 'registry register: every error counted');
  t.equal(reg.get('register')?.num_requests, REG);
  t.match(reg.get('register')?.last_error, /^[A-Z_]+: /, 'last_error is the error header text');
  const disp = await statsOf(t, nc, services.dispatcher);
  t.equal(disp.get('query')?.num_errors, Q, 'dispatcher query: errors to reply and result subjects counted');
  t.match(disp.get('query')?.last_error, /^UNKNOWN_TASK: /);
  const wk = await statsOf(t, nc, services.worker);
  t.equal(wk.get('infer')?.num_errors, W, 'worker infer: every error counted');
  t.equal(wk.get('instances')?.num_errors, 0, 'no error where none was answered');

  // Counts keep adding up across stats requests (the stats handler adds what came since the last one).
  const m = await nc.request(subjects.registry.register, new TextEncoder().encode('[]'), { timeout: 5000 });
  t.ok(isError(m.headers));
  t.equal((await statsOf(t, nc, services.registry)).get('register')?.num_errors, REG + 1);
  t.equal((await statsOf(t, nc, services.registry)).get('register')?.num_errors, REG + 1, 'a second stats request counts nothing twice');
});
