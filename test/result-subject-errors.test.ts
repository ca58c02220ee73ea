// An asynchronous caller matches answers on its result subject by query id: errors published there
// carry the id too (issue #12), whether the dispatcher or a worker answered; replies keep their form.
import t from 'tap';
import type { Msg, NatsConnection } from 'nats';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';
import { arrayToTensor, decodePayload, encodeJson, encodePayload, unpackMsgpack } from '../runtime/bus/codec.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { InfaasError } from '../schemas/errors.js';
import type { QueryResult } from '../schemas/query.js';
import { subjects } from '../subjects/index.js';
import { ErrorReply } from '../schemas/registry.js';
import { validate } from '../schemas/validate.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';

const RESULTS = 'infaas.results.async-caller';

/** Publishes `data` and returns the first message on the result subject. */
async function published(nc: NatsConnection, subject: string, enc: { data: Uint8Array; headers: Msg['headers'] }): Promise<Msg> {
  const sub = nc.subscribe(RESULTS, { max: 1, timeout: 5000 });
  nc.publish(subject, enc.data, { headers: enc.headers! });
  for await (const m of sub) return m;
  throw new Error('no answer on the result subject');
}

const query = (extra: Record<string, unknown>) => ({ task: 'nobody-does-this', slo: { latencyMs: 100 }, inputs: { x: { dtype: 'float32', shape: [1], data: [1] } }, ...extra });

t.test('errors on a result subject carry the query id; replies are unchanged', async (t) => {
  const sys = await startTestSystem(t);
  const worker = await startTestWorker(t, sys);
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  const { nc } = sys;

  for (const json of [true, false]) {
    const m = await published(nc, subjects.query, encodePayload(query({ id: 'q-42', resultSubject: RESULTS }), json));
    t.ok(m.headers?.get('Nats-Service-Error-Code'), 'an error, with the micro headers');
    const body = validate(ErrorReply, json ? decodePayload(m.data, m.headers) : unpackMsgpack(m.data), 'error');
    t.equal(body.id, 'q-42', `dispatcher (${json ? 'JSON' : 'MessagePack'}): the query id is in the error`);
    t.equal(body.error.code, 'UNKNOWN_TASK');
  }

  const noId = await published(nc, subjects.query, encodePayload(query({ resultSubject: RESULTS }), true));
  t.notOk('id' in (decodePayload(noId.data, noId.headers) as object), 'a query without an id: no id key');

  // A worker answering a direct inference request on its result subject.
  const w = await published(nc, subjects.worker.infer(worker.id), encodePayload({ id: 'w-7', variant: 'nope.v1', inputs: {}, resultSubject: RESULTS }, true));
  const wb = validate(ErrorReply, decodePayload(w.data, w.headers), 'error');
  t.equal(wb.id, 'w-7', 'worker: the query id is in the error');
  t.ok(w.headers?.get('Nats-Service-Error'));

  // QueryClient's asynchronous form hands the id over with the error.
  const qc = new QueryClient(nc);
  const got = new Promise<QueryResult | InfaasError>((resolve) => { const sub = qc.results(RESULTS, (a) => { sub.unsubscribe(); resolve(a); }); });
  await qc.publish({ id: 'q-44', task: 'nobody-does-this', slo: { latencyMs: 100 }, inputs: { x: arrayToTensor('float32', [1], new Float32Array(1)) }, resultSubject: RESULTS });
  const e = await got;
  t.ok(e instanceof InfaasError && e.code === 'UNKNOWN_TASK' && e.queryId === 'q-44', 'results(): an InfaasError with queryId');

  // A reply (request/reply) matches by inbox: its body stays {error} exactly.
  const q = encodePayload(query({ id: 'q-43' }), true);
  const r = await nc.request(subjects.query, q.data, { headers: q.headers, timeout: 5000 });
  t.same(Object.keys(decodePayload(r.data, r.headers) as object), ['error'], 'reply body: only error');
  const direct = await nc.request(subjects.worker.infer(worker.id), encodeJson({ id: 'w-8', variant: 'nope.v1', inputs: {} }), { headers: encodePayload({}, true).headers, timeout: 5000 });
  t.same(Object.keys(decodePayload(direct.data, direct.headers) as object), ['error']);
});
