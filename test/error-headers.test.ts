// A body whose decoding error quotes a newline must get a structured error, not kill the process:
// every error reply's header text goes through one sanitiser (InfaasError.headerText).
import t from 'tap';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { InfaasError } from '../schemas/errors.js';
import { silentLogger } from '../runtime/log.js';
import { headerNames, subjects } from '../subjects/index.js';
import { encodePayload } from '../runtime/bus/codec.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';

t.test('the header text of an error has no control characters', async (t) => {
  const e = new InfaasError('BAD_REQUEST', 'cannot parse "nope\nnope\r\u0000x"');
  t.equal(e.headerText, 'BAD_REQUEST: cannot parse "nope nope x"');
  t.ok(new InfaasError('BAD_REQUEST', 'x'.repeat(5000)).headerText.length <= 1000);
});

t.test('a 9-byte body with a newline gets an error from every service, and they keep serving', async (t) => {
  const sys = await startTestSystem(t);
  const worker = await startTestWorker(t, sys);
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  const body = new TextEncoder().encode('nope\nnope');
  const targets = [
    'infaas.registry.models', subjects.worker.instances(worker.id), subjects.worker.load(worker.id),
    subjects.worker.unload(worker.id), subjects.worker.infer(worker.id), subjects.query,
  ];
  for (const subject of targets) {
    const m = await sys.nc.request(subject, body, { timeout: 5000 });
    t.ok(m.headers?.get('Nats-Service-Error-Code'), `${subject}: an error reply (${m.headers?.get('Nats-Service-Error')})`);
    t.notMatch(m.headers?.get('Nats-Service-Error') ?? '', /[\r\n]/);
  }
  // A forwarded query (a dispatcher's form: the client's bytes, routing in headers) with a bad variant header.
  const fwd = encodePayload({ model: 'm', slo: { latencyMs: 100 }, inputs: { x: { dtype: 'float32', shape: [1], data: new Uint8Array(4) } } });
  fwd.headers.set(headerNames.variant, 'no\tgood');
  const bad = await sys.nc.request(subjects.worker.infer(worker.id), fwd.data, { headers: fwd.headers, timeout: 5000 });
  t.match(bad.headers?.get('Nats-Service-Error') ?? '', /^INVALID_NAME: /, 'a malformed Infaas-Variant header is INVALID_NAME');
  const after = await sys.client.models();
  t.ok(Array.isArray(after), 'the registrar still answers');
  const instances = await sys.nc.request(subjects.worker.instances(worker.id), new TextEncoder().encode('{}'), { timeout: 5000 });
  t.notOk(instances.headers?.get('Nats-Service-Error-Code'), 'the worker still answers');
});
