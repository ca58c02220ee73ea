// Fuzz: thousands of damaged messages to every control and data subject of a running system
// (nats-server, registrar, dispatcher, profiler, a worker serving a zoo model). Every request is
// answered with a result or a structured {error:{code,message}}, valid queries sent alongside are
// all answered, and every service still answers afterwards. Seeded: INFAAS_FUZZ_SEED=<n> repeats a
// run (INFAAS_FUZZ_COUNT sets its length).
import t from 'tap';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { arrayToTensor, unpackMsgpack } from '../runtime/bus/codec.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { silentLogger } from '../runtime/log.js';
import { services, subjects } from '../subjects/index.js';
import { ErrorCode, type InfaasError } from '../schemas/errors.js';
import { ZOO_TASK } from '../zoo/index.js';
import { describeCase, nextCase, type FuzzCase, type FuzzTarget } from './helpers/fuzz-cases.js';
import { prng } from './helpers/fuzz-mutate.js';
import { parseHeaders, RawNats, type RawMsg } from './helpers/raw-nats.js';
import { connectTest, startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';

const SEED = Number(process.env.INFAAS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
const COUNT = Number(process.env.INFAAS_FUZZ_COUNT ?? 10_000);
/** A safety stop for a slow machine; the run reports how far it got. */
const BUDGET_MS = 45_000;
/** A request still unanswered this long after it was sent counts as lost (far above any deadline sent). */
const ANSWER_WITHIN_MS = 15_000;
const MAX_OUTSTANDING = 64;

type Verdict = 'result' | 'error' | 'unstructured' | 'no-responders';

const textDecoder = new TextDecoder();

function decodeBody(data: Uint8Array): unknown {
  try { return unpackMsgpack(data); } catch { /* not MessagePack */ }
  try { return JSON.parse(textDecoder.decode(data)); } catch { return undefined; }
}

/** A reply is a result, or an error body `{error:{code,message}}` with the micro-protocol headers. */
function judge(c: FuzzCase, m: RawMsg): { verdict: Verdict; code?: string } {
  const { status, headers } = parseHeaders(m.headers);
  if (status === 503 && m.data.length === 0) return { verdict: 'no-responders' };
  const body = decodeBody(m.data) as { error?: { code?: unknown; message?: unknown }; outputs?: unknown } | undefined;
  if (headers.has('nats-service-error-code')) {
    const ok = typeof body?.error?.code === 'string' && typeof body.error.message === 'string';
    return ok ? { verdict: 'error', code: body!.error!.code as string } : { verdict: 'unstructured' };
  }
  if (body === undefined || body === null || typeof body !== 'object' || 'error' in body) return { verdict: 'unstructured' };
  if (c.plane === 'data' && typeof body.outputs !== 'object') return { verdict: 'unstructured' };
  return { verdict: 'result' };
}

t.test(`fuzzing control and data subjects (seed ${SEED})`, async (t) => {
  const sys = await startTestSystem(t);
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  // The worker has its own connection, as a worker process would.
  const workerBus = await connectTest(t, sys.url, 'worker');
  const worker = await startTestWorker(t, workerBus);
  const info = await registerZooModel(sys.client, 'mlp-small');
  const target: FuzzTarget = { model: 'mlp-small', task: ZOO_TASK, variants: info.variants.map((v) => v.id), workerId: worker.id };

  const client = await connectTest(t, sys.url, 'client');
  const qc = new QueryClient(client.nc);
  const image = arrayToTensor('float32', [1, 1, 28, 28], new Float32Array(784).fill(0.25));
  const validQuery = () => qc.query({ task: ZOO_TASK, inputs: { image }, slo: { latencyMs: 5000 } }, { timeoutMs: 20_000 });
  await validQuery(); // the worker now serves an instance

  const raw = await RawNats.connect(sys.url);
  t.teardown(() => raw.close());
  const pending = new Map<number, { c: FuzzCase; sentAt: number }>();
  const failures: string[] = [];
  const internals: string[] = [];
  const tally: Record<string, number> = {};
  const count = (k: string) => { tally[k] = (tally[k] ?? 0) + 1; };
  let wake: (() => void) | undefined;
  raw.subscribe('_FZ.>', (m) => {
    const n = Number(m.subject.slice(4));
    const p = pending.get(n);
    if (!p) { count('late or duplicate reply'); return; }
    pending.delete(n);
    const { verdict, code } = judge(p.c, m);
    count(`${p.c.target} ${verdict === 'error' ? code : verdict}`);
    // INTERNAL is structured, but says a handler met an exception nobody expected: worth a look.
    if (code === 'INTERNAL') internals.push(`#${n} ${describeCase(p.c)} -> ${Buffer.from(m.data.subarray(0, 300)).toString('latin1')}`);
    if (verdict === 'unstructured' || verdict === 'no-responders') failures.push(`#${n} ${verdict}: ${describeCase(p.c)} -> ${JSON.stringify(Buffer.from(m.data.subarray(0, 200)).toString('latin1'))}`);
    wake?.();
  });

  // Valid queries alongside, every 100 ms, on their own connection.
  const valid = { sent: 0, answered: 0, errors: {} as Record<string, number> };
  const validDone: Promise<void>[] = [];
  const validTimer = setInterval(() => {
    valid.sent++;
    validDone.push(validQuery().then(() => { valid.answered++; }, (err: InfaasError) => { valid.errors[err.code] = (valid.errors[err.code] ?? 0) + 1; }));
  }, 100);
  t.teardown(() => clearInterval(validTimer));

  // Header blocks nats.js cannot decode (a lone CR/LF, a key byte outside '!'..'~') go in the run
  // like the rest; one of each kind is also probed on its own at the end.
  const r = prng(SEED);
  const deferred: FuzzCase[] = [];
  const started = Date.now();
  let sent = 0;
  let published = 0;
  for (let n = 0; n < COUNT && Date.now() - started < BUDGET_MS; n++) {
    const c = nextCase(r, target);
    if (c.plane === 'data' && c.headerFailure) deferred.push(c);
    count(`${c.target} sent`);
    if (!c.request) { raw.publish(c.subject, c.data, { ...(c.headers ? { headers: c.headers } : {}) }); published++; continue; }
    while (pending.size >= MAX_OUTSTANDING) await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 100); });
    pending.set(n, { c, sentAt: Date.now() });
    raw.publish(c.subject, c.data, { reply: `_FZ.${n}`, ...(c.headers ? { headers: c.headers } : {}) });
    sent++;
    if (sent % 50 === 0) await raw.flush();
  }
  const sendingMs = Date.now() - started;
  await raw.flush();
  for (const end = Date.now() + ANSWER_WITHIN_MS; pending.size > 0 && Date.now() < end;) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const [n, p] of pending) failures.push(`#${n} no answer within ${ANSWER_WITHIN_MS} ms: ${describeCase(p.c)}`);
  clearInterval(validTimer);
  await Promise.all(validDone);

  t.comment(`seed ${SEED}: ${sent} requests and ${published} publishes in ${sendingMs} ms (${deferred.length} data-plane cases with undecodable headers among them); raw connection errors: ${raw.errors.length}`);
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(Object.entries(tally).sort()))}`);
  t.comment(`valid queries alongside: ${valid.answered}/${valid.sent} answered, errors ${JSON.stringify(valid.errors)}`);
  for (const f of [...failures.slice(0, 10), ...internals.slice(0, 10)]) t.comment(f);
  t.ok(sent >= 1000, `thousands of requests sent (${sent})`);
  t.equal(failures.length, 0, `every request answered with a result or a structured error (seed ${SEED}); ${failures.length} not`);
  t.equal(internals.length, 0, `no INTERNAL errors (unexpected exceptions); ${internals.length}`);
  // On busy cores a valid query may be refused for load: an honest answer, not a lost one. A TIMEOUT
  // (no answer at all) or any other error still fails.
  const forLoad = new Set<string>([ErrorCode.DeadlineExceeded, ErrorCode.NoCapacity]);
  const refused = Object.entries(valid.errors).filter(([code]) => forLoad.has(code)).reduce((a, [, n]) => a + n, 0);
  t.same(Object.keys(valid.errors).filter((code) => !forLoad.has(code)), [], 'no valid query lost or failed for anything but load');
  t.equal(valid.answered + refused, valid.sent, 'every valid query sent alongside was answered (or refused for load)');
  t.ok(valid.answered > 0, `valid queries were served during the run (${valid.answered})`);
  t.same(raw.errors, [], 'the server refused nothing on the fuzzing connection');

  // Every actor is still there and still serving.
  for (const name of [services.registry, services.profiler, services.worker, services.dispatcher]) {
    await t.resolves(sys.nc.request(`$SRV.PING.${name}`, new Uint8Array(), { timeout: 5000 }), `${name} answers a ping`);
  }
  const instances = JSON.parse(textDecoder.decode((await sys.nc.request(subjects.worker.instances(worker.id), new TextEncoder().encode('{}'), { timeout: 5000 })).data)) as { state: string };
  t.equal(instances.state, 'ready', 'the worker is still serving (no drain got through)');
  t.equal((await sys.client.info('mlp-small')).model.status, 'registered', 'the model is still registered');
  await t.resolves(validQuery(), 'a valid query is answered after the run');

  // Undecodable headers, one of each kind on its own: nats.js's header getter throws for a key with
  // a byte outside '!'..'~' or a value with a lone CR or LF. Handlers that let that escape answered
  // with an empty body (no error code), and when the bad key byte was itself a CR or LF, nats.js's
  // fallback reply threw too and the connection stopped reading ("reader closed"): every service on
  // it went deaf. The data plane now reads headers inside its try (headersOf: MALFORMED_MESSAGE).
  const unstructured = deferred.find((c) => c.request && !c.headerFailure!.breaksReader);
  if (unstructured) {
    const reply = new Promise<RawMsg>((resolve) => raw.subscribe('_FZP.probe', resolve));
    raw.publish(unstructured.subject, unstructured.data, { reply: '_FZP.probe', ...(unstructured.headers ? { headers: unstructured.headers } : {}) });
    const m = await Promise.race([reply, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000))]);
    t.comment(`probe: ${describeCase(unstructured)}`);
    t.ok(m && judge(unstructured, m).verdict === 'error', 'a data-plane request with an undecodable header gets an error body');
  }
  const breaker = deferred.find((c) => c.request && c.headerFailure!.breaksReader);
  if (breaker) {
    raw.publish(breaker.subject, breaker.data, { reply: '_FZ.breaker', ...(breaker.headers ? { headers: breaker.headers } : {}) });
    await raw.flush();
    t.comment(`probe: ${describeCase(breaker)}`);
    // A generous objective: what is checked is that the connection still reads, not how fast.
    const after = await validQuery().then(() => true, () => false);
    t.ok(after, 'the system still answers after a header key with a lone CR/LF');
  }
});
