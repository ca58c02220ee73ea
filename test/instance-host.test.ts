// The instance host's queue and batching loop, driven with a scripted session (its timing and
// failures are what these tests control; real sessions are in worker-serving.test.ts).
import t from 'tap';
import { VariantInstance, type InstanceOptions, type InstanceSession, type Outcome, type QueuedQuery } from '../actors/instance/index.js';
import { checkInputs } from '../actors/instance/inputs.js';
import type { Feed } from '../runtime/onnx/threaded-session.js';
import { arrayToTensor, tensorToArray } from '../runtime/bus/codec.js';
import { silentLogger } from '../runtime/log.js';

const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [null, 2] }];

/** Echoes its input as output `y` after `delayMs`; fails when told to. */
class ScriptedSession implements InstanceSession {
  readonly loadMs = 1;
  runs: number[] = [];
  delayMs = 0;
  failNext = false;
  /** Called as a run starts, with its rows. */
  onRun?: (rows: number) => void;
  private exit?: (err?: Error) => void;
  async run(feeds: Record<string, Feed>) {
    this.runs.push(feeds.x.dims[0]);
    this.onRun?.(feeds.x.dims[0]);
    await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext) { this.failNext = false; throw new Error('ORT said no'); }
    return { outputs: { y: { ...feeds.x, data: Float32Array.from(feeds.x.data as Float32Array) } }, ms: this.delayMs };
  }
  async close() {}
  onExit(cb: (err?: Error) => void) { this.exit = cb; }
  crash() { this.exit?.(new Error('thread died')); }
}

function instance(session: ScriptedSession, maxBatch = 8, id = 'i1') {
  return new VariantInstance({
    spec: { id, variant: 'm.v', model: 'm', maxBatch, threads: 1, memoryBytes: 1, inputs, profile: { latency: [{ batch: 1, p50Ms: 1 }, { batch: 8, p50Ms: 2 }], loadMs: 1 } },
    worker: { id: 'w', hardwareClass: 'cpu-test', pricePerHour: 1, threads: 2 },
    open: async () => session, log: silentLogger, onState: () => {},
  });
}

function query(value: number, deadlineMs: number, rows = 1): { q: QueuedQuery; outcome: Promise<Outcome> } {
  let answer!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((r) => { answer = r; });
  const now = Date.now();
  const checked = checkInputs({ x: arrayToTensor('float32', [rows, 2], new Float32Array(rows * 2).fill(value)) }, inputs, 8);
  return { q: { checked, deadline: now + deadlineMs, startedAt: now, receivedAt: now, answer }, outcome };
}

t.test('queued queries are batched together and each gets its own rows back', async (t) => {
  const s = new ScriptedSession();
  const inst = instance(s);
  await inst.loaded;
  s.delayMs = 20;
  const first = query(0, 1000);
  inst.enqueue(first.q); // runs alone; the next four queue behind it
  const rest = [1, 2, 3, 4].map((v) => query(v, 1000, v === 3 ? 2 : 1));
  for (const r of rest) inst.enqueue(r.q);
  const outs = await Promise.all(rest.map((r) => r.outcome));
  t.same(s.runs.slice(-2), [1, 5], 'one run of 1 row, then one batch of 5 rows');
  outs.forEach((o, i) => {
    if (!('result' in o)) { t.fail(o.error.message); return; }
    const y = tensorToArray(o.result.outputs.y) as Float32Array;
    t.ok(y.every((v) => v === i + 1), `query ${i + 1} got its own rows`);
  });
});

t.test('a query that expires in the queue is answered DEADLINE_EXCEEDED and never computed', async (t) => {
  const s = new ScriptedSession();
  const inst = instance(s);
  await inst.loaded;
  const runsBefore = s.runs.length;
  s.delayMs = 40;
  const slow = query(1, 1000);
  const due = query(2, 10);
  inst.enqueue(slow.q);
  inst.enqueue(due.q);
  const o = await due.outcome;
  t.equal('error' in o && o.error.code, 'DEADLINE_EXCEEDED', 'error' in o ? o.error.message : 'answered');
  await slow.outcome;
  t.same(s.runs.slice(runsBefore), [1], 'only the first query ran');
  t.equal(inst.inFlight, 0, 'nothing left in flight');
});

t.test('a failed batch answers every query in it; the instance keeps serving', async (t) => {
  const s = new ScriptedSession();
  const inst = instance(s);
  await inst.loaded;
  s.delayMs = 10;
  const blocker = query(0, 1000);
  inst.enqueue(blocker.q);
  s.failNext = true;
  const batch = [1, 2, 3].map((v) => query(v, 1000));
  for (const b of batch) inst.enqueue(b.q);
  const bo = await blocker.outcome;
  t.equal('error' in bo && bo.error.code, 'INFERENCE_FAILED', 'the running batch failed');
  const outs = await Promise.all(batch.map((b) => b.outcome));
  t.ok(outs.every((o) => 'result' in o), 'the next batch is served');
  const again = query(5, 1000);
  s.failNext = true;
  inst.enqueue(again.q);
  const a = await again.outcome;
  t.equal('error' in a && a.error.code, 'INFERENCE_FAILED');
  t.ok('error' in a && /ORT said no/.test(a.error.message), 'with the runtime message');
  t.equal(inst.state, 'active', 'still serving');
});

t.test('a crashed session fails the instance and answers everything queued', async (t) => {
  const s = new ScriptedSession();
  const inst = instance(s);
  await inst.loaded;
  s.delayMs = 30;
  const running = query(0, 1000);
  const queued = query(1, 1000);
  inst.enqueue(running.q);
  inst.enqueue(queued.q);
  s.crash();
  const q = await queued.outcome;
  t.equal('error' in q && q.error.code, 'INFERENCE_FAILED');
  t.equal(inst.state, 'failed');
  const late = query(2, 1000);
  inst.enqueue(late.q);
  const l = await late.outcome;
  t.equal('error' in l && l.error.code, 'VARIANT_NOT_LOADED', 'a failed instance refuses new work with an error');
});

t.test('a switch hands queued queries to the replacement', async (t) => {
  const s1 = new ScriptedSession();
  const s2 = new ScriptedSession();
  const old = instance(s1, 8, 'old');
  const next = instance(s2, 8, 'new');
  await Promise.all([old.loaded, next.loaded]);
  s1.delayMs = 30;
  const running = query(0, 1000);
  old.enqueue(running.q);
  const waiting = [1, 2].map((v) => query(v, 1000));
  for (const w of waiting) old.enqueue(w.q);
  t.equal(old.handOver(next), 2, 'two queued queries moved');
  const outs = await Promise.all(waiting.map((w) => w.outcome));
  t.ok(outs.every((o) => 'result' in o), 'answered by the replacement');
  t.ok((await running.outcome) && 'result' in (await running.outcome), 'the running batch finished on the old one');
  await old.drain();
  t.equal(old.state, 'unloaded');
});

function loadingInstance(open: () => Promise<InstanceSession>, options = {}) {
  return new VariantInstance({
    spec: { id: 'il', variant: 'm.v', model: 'm', maxBatch: 8, threads: 1, memoryBytes: 1, inputs, profile: { latency: [{ batch: 1, p50Ms: 1 }, { batch: 8, p50Ms: 2 }], loadMs: 1 } },
    worker: { id: 'w', hardwareClass: 'cpu-test', pricePerHour: 1, threads: 2 },
    open, log: silentLogger, onState: () => {}, options,
  });
}

t.test('queries waiting for a loading instance are answered at their deadline; a more urgent one first', async (t) => {
  let release!: (s: InstanceSession) => void;
  const inst = loadingInstance(() => new Promise((r) => { release = r; }));
  // Deadlines far apart, so that even late timers on a busy machine tell the two expiries apart.
  const patient = query(1, 1000);
  const urgent = query(2, 30);
  let patientAnswered = false;
  void patient.outcome.then(() => { patientAnswered = true; });
  inst.enqueue(patient.q);
  inst.enqueue(urgent.q);
  const o = await urgent.outcome;
  t.equal('error' in o && o.error.code, 'DEADLINE_EXCEEDED', 'the urgent one expires while the instance loads');
  t.notOk(patientAnswered, 'at its own deadline, not the patient one\'s: the patient one is still waiting');
  const p = await patient.outcome;
  t.equal('error' in p && p.error.code, 'DEADLINE_EXCEEDED', 'so does the patient one, at its deadline');
  release(new ScriptedSession());
  t.equal(await inst.loaded, 'active');
  await inst.drain();
});

t.test('a drain while loading answers the waiting queries and closes the session that was being opened', async (t) => {
  let release!: (s: InstanceSession) => void;
  const inst = loadingInstance(() => new Promise((r) => { release = r; }));
  const waiting = query(1, 5000);
  inst.enqueue(waiting.q);
  const drained = inst.drain();
  const o = await waiting.outcome;
  t.equal('error' in o && o.error.code, 'VARIANT_NOT_LOADED', 'answered, retryable');
  t.equal('error' in o && o.error.retryable, true);
  await drained;
  t.equal(inst.state, 'unloaded');
  const s = new ScriptedSession();
  let closed = false;
  s.close = async () => { closed = true; };
  release(s);
  await new Promise((r) => setTimeout(r, 20));
  t.ok(closed, 'the half-opened session was closed, not leaked');
  t.same(s.runs, [], 'and never warmed up or used');
});

t.test('a load that hangs fails after loadTimeoutMs', async (t) => {
  const inst = loadingInstance(() => new Promise(() => {}), { loadTimeoutMs: 50 });
  t.equal(await inst.loaded, 'failed');
  t.match(inst.reason, /longer than 50 ms/);
});

t.test('a variant whose outputs are not batch-major runs one query at a time', async (t) => {
  const s = new ScriptedSession();
  const inst = new VariantInstance({
    spec: { id: 'nb', variant: 'm.v', model: 'm', maxBatch: 8, threads: 1, memoryBytes: 1, inputs, batchQueries: false, profile: { latency: [{ batch: 1, p50Ms: 1 }, { batch: 8, p50Ms: 2 }], loadMs: 1 } },
    worker: { id: 'w', hardwareClass: 'cpu-test', pricePerHour: 1, threads: 2 },
    open: async () => s, log: silentLogger, onState: () => {},
  });
  await inst.loaded;
  const before = s.runs.length;
  s.delayMs = 20;
  const qs = [1, 2, 3].map((v) => query(v, 1000));
  for (const q of qs) inst.enqueue(q.q);
  await Promise.all(qs.map((q) => q.outcome));
  t.same(s.runs.slice(before), [1, 1, 1], 'no query shares a run with another');
  await inst.drain();
});

function aimdInstance(session: ScriptedSession, options: Partial<InstanceOptions> = {}, latency = [{ batch: 1, p50Ms: 1 }, { batch: 8, p50Ms: 2 }]) {
  return new VariantInstance({
    spec: { id: 'ai', variant: 'm.v', model: 'm', maxBatch: 8, threads: 1, memoryBytes: 1, inputs, profile: { latency, loadMs: 1 } },
    worker: { id: 'w', hardwareClass: 'cpu-test', pricePerHour: 1, threads: 2 },
    open: async () => session, log: silentLogger, onState: () => {}, options: { batching: 'aimd', ...options },
  });
}

t.test('aimd batching: no batch takes more rows than the cap; the cap grows from one row as full batches meet their objective', async (t) => {
  const s = new ScriptedSession();
  const inst = aimdInstance(s);
  await inst.loaded;
  t.equal(inst.batchCap, 1, 'starts at one row (the warm-up runs do not count)');
  const seen: { rows: number; cap: number }[] = [];
  s.onRun = (rows) => seen.push({ rows, cap: inst.batchCap });
  s.delayMs = 20;
  const qs = Array.from({ length: 12 }, (_, i) => query(i, 5000));
  for (const q of qs) inst.enqueue(q.q);
  const outs = await Promise.all(qs.map((q) => q.outcome));
  t.ok(outs.every((o) => 'result' in o), 'every query answered with its result');
  t.equal(seen.reduce((a, r) => a + r.rows, 0), 12, 'each row ran once');
  t.ok(seen.every((r) => r.rows <= r.cap), `each batch within the cap it ran under: ${JSON.stringify(seen)}`);
  t.ok(seen.some((r) => r.rows > 1), 'batches still form: the cap grew');
  t.ok(Math.max(...seen.map((r) => r.rows)) < 8, `never a max batch, as work-conserving batching would run at once: ${seen.map((r) => r.rows).join(', ')}`);
  await inst.drain();
});

t.test('aimd batching: a batch over its objective backs the cap off; a query larger than the cap runs alone', async (t) => {
  const s = new ScriptedSession();
  // Profiled as the session runs (10 ms), so admission neither refuses nor expects a slowdown.
  const inst = aimdInstance(s, {}, [{ batch: 1, p50Ms: 10 }, { batch: 8, p50Ms: 20 }]);
  await inst.loaded;
  s.delayMs = 10;
  // Queries of `cap` rows, one at a time: each batch is full and within its objective.
  for (const cap of [1, 2, 3, 4]) {
    t.equal(inst.batchCap, cap);
    const q = query(cap, 1000, cap);
    inst.enqueue(q.q);
    t.ok('result' in (await q.outcome));
  }
  t.equal(inst.batchCap, 5, 'grew by one row per full batch');
  // A batch of 5 rows whose objective (40 ms left on arrival) its run (60 ms) overshoots.
  s.delayMs = 60;
  const late = query(9, 40, 5);
  inst.enqueue(late.q);
  t.ok('result' in (await late.outcome), 'admitted (as profiled it fits) and computed');
  t.equal(inst.batchCap, 4, 'backed off by 10 %: floor(5 x 0.9)');
  s.delayMs = 10;
  const big = query(7, 1000, 6);
  inst.enqueue(big.q);
  t.ok('result' in (await big.outcome), 'a query of 6 rows behind a cap of 4 still runs');
  t.equal(s.runs[s.runs.length - 1], 6, 'alone, in one run');
  await inst.drain();
});

t.test('work-conserving batching is the default: batches up to the max batch', async (t) => {
  const s = new ScriptedSession();
  const inst = instance(s);
  await inst.loaded;
  t.equal(inst.batchCap, 8);
});
