// A monitor window in which an instance missed deadlines publishes one instance.deadlines.missed
// event for it (issue #12: 15 % of a burst missed and nothing said so), and a window without misses
// publishes none. Driven with a scripted session (its timing forces the misses), then live: a burst
// on a real worker whose events, read on its NATS subject, add up to the misses its clients saw.
import t from 'tap';
import { VariantInstance, type InstanceSession, type Outcome, type QueuedQuery } from '../actors/instance/index.js';
import { checkInputs } from '../actors/instance/inputs.js';
import { Heartbeat } from '../actors/worker/heartbeat.js';
import type { InstanceRegistry } from '../actors/worker/registry.js';
import { defaultThresholds } from '../actors/monitor/index.js';
import type { Feed } from '../runtime/onnx/threaded-session.js';
import type { Stores } from '../runtime/bus/store.js';
import type { WorkerEvent, WorkerEventType } from '../schemas/worker.js';
import { WorkerEvent as WorkerEventSchema } from '../schemas/worker.js';
import { validate } from '../schemas/validate.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { silentLogger } from '../runtime/log.js';
import { decodeJson } from '../runtime/bus/codec.js';
import { WorkerClient } from '../runtime/client/worker-client.js';
import { InfaasError } from '../schemas/errors.js';
import { subjects } from '../subjects/index.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel } from './helpers/zoo.js';

const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [null, 2] }];

/** Answers after `delayMs`. */
class SlowSession implements InstanceSession {
  readonly loadMs = 1;
  delayMs = 0;
  async run(feeds: Record<string, Feed>) {
    await new Promise((r) => setTimeout(r, this.delayMs));
    return { outputs: { y: { ...feeds.x, data: Float32Array.from(feeds.x.data as Float32Array) } }, ms: this.delayMs };
  }
  async close() {}
  onExit() {}
}

function instance(session: SlowSession, id: string) {
  return new VariantInstance({
    spec: { id, variant: 'm.v', model: 'm', maxBatch: 1, threads: 1, memoryBytes: 1, inputs, profile: { latency: [{ batch: 1, p50Ms: 1 }], loadMs: 1 } },
    worker: { id: 'w1', hardwareClass: 'cpu-test', pricePerHour: 1, threads: 2 },
    open: async () => session, log: silentLogger, onState: () => {},
  });
}

function query(deadlineMs: number): { q: QueuedQuery; outcome: Promise<Outcome> } {
  let answer!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((r) => { answer = r; });
  const now = Date.now();
  const checked = checkInputs({ x: arrayToTensor('float32', [1, 2], new Float32Array(2)) }, inputs, 1);
  return { q: { checked, deadline: now + deadlineMs, startedAt: now, receivedAt: now, answer }, outcome };
}

t.test('an instance that missed deadlines in a window gets one event for it; a clean window none', async (t) => {
  const slow = new SlowSession();
  const fine = new SlowSession();
  const a = instance(slow, 'i-slow');
  const b = instance(fine, 'i-fine');
  await Promise.all([a.loaded, b.loaded]);
  const events: WorkerEvent[] = [];
  const registry = {
    live: () => [a, b], instances: new Map([[a.spec.id, a], [b.spec.id, b]]),
    writeRecord: async () => undefined, reserved: () => ({ threads: 0, memory: 0 }),
  } as unknown as InstanceRegistry;
  const heartbeat = new Heartbeat({
    worker: { id: 'w1', hardwareClass: 'cpu-test', pricePerHour: 1, threads: 2, memoryBytes: 1 },
    registry, stores: {} as Stores, log: silentLogger, thresholds: defaultThresholds,
    event: (type: WorkerEventType, message: string, fields: Partial<WorkerEvent> = {}) => {
      events.push(validate(WorkerEventSchema, { type, worker: 'w1', at: Date.now(), message, ...fields }, 'event'));
    },
  });
  heartbeat.sample(); // a first window, before any query

  // One slow run holds the instance; four queries due in 10 ms behind it cannot make it.
  slow.delayMs = 60;
  const qs = [query(2000), ...[1, 2, 3, 4].map(() => query(10))];
  for (const q of qs) a.enqueue(q.q);
  const ok = query(2000);
  b.enqueue(ok.q);
  const outcomes = await Promise.all(qs.map((q) => q.outcome));
  t.notOk('error' in (await ok.outcome), 'the other instance answered in time');
  t.notOk('error' in outcomes[0], 'the slow query was answered');
  const missed = outcomes.filter((o) => 'error' in o && (o.error.code === 'DEADLINE_EXCEEDED' || o.error.code === 'NO_CAPACITY')).length;
  // The first of them may slip in (the instance's admission trusts its 1 ms profile until runs say otherwise).
  t.ok(missed >= 3, `${missed} of the four urgent queries missed (refused at admission or expired in the queue)`);
  t.equal(outcomes.filter((o) => 'error' in o).length, missed, 'no other errors');

  heartbeat.sample();
  const ev = events.filter((e) => e.type === 'instance.deadlines.missed');
  t.equal(ev.length, 1, 'one event, for the instance that missed');
  t.equal(ev[0]?.instance, 'i-slow');
  t.equal(ev[0]?.variant, 'm.v');
  t.match(ev[0]?.details, { model: 'm', misses: missed, queries: 5 }, 'misses and every query answered in the window');
  t.ok((ev[0]?.details?.windowMs as number) > 0, 'the window length');
  t.match(ev[0]?.message, `i-slow (m.v) missed ${missed} of 5 deadlines`);

  heartbeat.sample();
  t.equal(events.filter((e) => e.type === 'instance.deadlines.missed').length, 1, 'the next window had no misses: no new event');
});

t.test('a burst with tight deadlines on a real worker: events on its subject add up to the misses', async (t) => {
  const sys = await startTestSystem(t, { generator: { precisions: ['fp32'], optLevels: ['all'], maxBatches: [8], threads: [1], providers: ['cpu'] } });
  const info = await registerZooModel(sys.client, 'cnn-wide');
  const variant = info.variants[0];
  const worker = await startTestWorker(t, sys, { monitor: { windowMs: 200 } });
  const wc = new WorkerClient(sys.nc);
  await wc.load(worker.id, variant.id);
  const events: WorkerEvent[] = [];
  const sub = sys.nc.subscribe(subjects.events.worker(worker.id));
  // Ends the wait below if the events never add up (a failure, not a hang).
  const giveUp = setTimeout(() => sub.unsubscribe(), 15_000);
  t.teardown(() => { clearTimeout(giveUp); sub.unsubscribe(); });

  // 300 queries of 8 rows at once (~5 ms a batch), each due in 400 ms (sending them all takes
  // ~150 ms of this process, the worker's too): the queue cannot hold them all in time.
  const N = 300;
  const answers = await Promise.all(Array.from({ length: N }, (_, i) => wc.infer(worker.id, {
    id: `b${i}`, variant: variant.id, inputs: { image: arrayToTensor('float32', [8, 1, 28, 28], new Float32Array(8 * 784).fill(i / N)) },
  }, { deadlineMs: 400, timeoutMs: 5000 }).then(() => 'ok', (e: InfaasError) => e)));
  const codes: Record<string, number> = {};
  for (const a of answers) { const k = typeof a === 'string' ? a : a.code; codes[k] = (codes[k] ?? 0) + 1; }
  t.comment(`answers: ${JSON.stringify(codes)}`);
  const atInstance = answers.filter((a): a is InfaasError => a instanceof InfaasError
    && (a.code === 'NO_CAPACITY' || (a.code === 'DEADLINE_EXCEEDED' && !a.message.includes('before the query reached the worker'))));
  t.ok(atInstance.length > 0, `${atInstance.length} of ${N} missed at the instance`);
  t.equal(answers.filter((a) => a !== 'ok').length, answers.filter((a) => a instanceof InfaasError).length, 'every failure is a coded error');

  // The events of the windows that saw them report every one of those misses, each window once.
  let missed = 0;
  for await (const m of sub) {
    const e = validate(WorkerEventSchema, decodeJson(m.data), 'event');
    if (e.type !== 'instance.deadlines.missed') continue;
    events.push(e);
    missed += e.details!.misses as number;
    if (missed >= atInstance.length) break;
  }
  t.equal(missed, atInstance.length, 'the events count every miss');
  t.ok(events.every((e) => e.variant === variant.id && e.details!.model === variant.model && (e.details!.queries as number) >= (e.details!.misses as number)), 'each names the variant and model; queries include the misses');
  t.ok(events.length < missed, `${events.length} events for ${missed} misses: one per window, not one per miss`);
  const times = events.map((e) => new Date(e.at).getTime());
  t.ok(times.every((x, i) => i === 0 || x - times[i - 1] >= 100), `at most one per window of 200 ms (gaps ${times.slice(1).map((x, i) => x - times[i]).join(', ')} ms)`);
});
