// An instance admits, expires and costs a query at its own input size: a model profiled at several
// sizes refuses a large input that cannot meet its deadline and serves a small one that can, where
// the profile's single curve (its largest size) refused both. Driven with a scripted session.
import t from 'tap';
import { VariantInstance, checkInputs, type InstanceSession, type InstanceSpec, type Outcome, type QueuedQuery } from '../actors/instance/index.js';
import type { Feed } from '../runtime/onnx/threaded-session.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { silentLogger } from '../runtime/log.js';

const inputs = [{ name: 'x', dtype: 'float32' as const, shape: [null, 3, null, null] }];
const SMALL = 3 * 8 * 8;
const LARGE = 3 * 32 * 32;
const small = [{ batch: 1, p50Ms: 5 }, { batch: 4, p50Ms: 12 }];
const large = [{ batch: 1, p50Ms: 60 }, { batch: 4, p50Ms: 200 }];

/** Echoes its input after `delayMs`, and records the side of each run's image. */
class ScriptedSession implements InstanceSession {
  readonly loadMs = 1;
  sides: number[] = [];
  delayMs = 0;
  async run(feeds: Record<string, Feed>) {
    this.sides.push(feeds.x.dims[3]);
    await new Promise((r) => setTimeout(r, this.delayMs));
    return { outputs: { y: { ...feeds.x } }, ms: this.delayMs };
  }
  async close() {}
  onExit() {}
}

async function instance(profile: InstanceSpec['profile']) {
  const session = new ScriptedSession();
  const inst = new VariantInstance({
    spec: { id: 'i1', variant: 'det.v', model: 'det', maxBatch: 4, threads: 1, memoryBytes: 1, inputs, ...(profile ? { profile } : {}) },
    worker: { id: 'w', hardwareClass: 'cpu-test', pricePerHour: 1, threads: 2 },
    open: async () => session, log: silentLogger, onState: () => {},
  });
  await inst.loaded;
  session.sides = [];
  return { inst, session };
}
const sized = { latency: large, loadMs: 1, sizes: [{ elements: SMALL, latency: small }, { elements: LARGE, latency: large }] };

function query(side: number, deadlineMs: number): { q: QueuedQuery; outcome: Promise<Outcome> } {
  let answer!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((r) => { answer = r; });
  const now = Date.now();
  const checked = checkInputs({ x: arrayToTensor('float32', [1, 3, side, side], new Float32Array(3 * side * side)) }, inputs, 4);
  return { q: { checked, deadline: now + deadlineMs, startedAt: now, receivedAt: now, answer }, outcome };
}
const code = (o: Outcome) => ('error' in o ? o.error.code : 'answered');

t.test('a large input that cannot finish by its deadline is refused; a small one is served', async (t) => {
  const { inst, session } = await instance(sized);
  const big = query(32, 30);
  inst.enqueue(big.q);
  const refused = await big.outcome;
  t.equal(code(refused), 'NO_CAPACITY', 'predicted 60 ms at 32x32 against 30 ms left');
  t.match('error' in refused && refused.error.message, /~60\.\d ms needed/);
  const little = query(8, 30);
  inst.enqueue(little.q);
  t.equal(code(await little.outcome), 'answered', 'predicted 5 ms at 8x8');
  t.same(session.sides, [8], 'only the small query ran');
  await inst.drain();
});

t.test('between and beyond the profiled sizes: interpolated, then extrapolated by elements', async (t) => {
  const { inst, session } = await instance(sized);
  // 16x16: 768 elements, 16 % of the way from 192 to 3,072: 5 + 0.2 x 55 = 14 ms.
  const mid = query(16, 12);
  inst.enqueue(mid.q);
  t.equal(code(await mid.outcome), 'NO_CAPACITY', 'about 14 ms needed, 12 left');
  const midOk = query(16, 25);
  inst.enqueue(midOk.q);
  t.equal(code(await midOk.outcome), 'answered');
  // 64x64: four times the largest size's elements, so 4 x 60 = 240 ms.
  const huge = query(64, 200);
  inst.enqueue(huge.q);
  t.equal(code(await huge.outcome), 'NO_CAPACITY', 'extrapolated past the largest size');
  const hugeOk = query(64, 400);
  inst.enqueue(hugeOk.q);
  t.equal(code(await hugeOk.outcome), 'answered');
  t.same(session.sides, [16, 64]);
  await inst.drain();
});

t.test('a small query queued behind a running one is neither refused nor expired at the large size', async (t) => {
  const { inst, session } = await instance(sized);
  session.delayMs = 10;
  const first = query(8, 500);
  inst.enqueue(first.q);
  // Behind a 5 ms (profiled) run: ~10 ms to finish, well within 100; at the large size it would need 120.
  // (100, not less: the run's own timer may be late on a busy machine, and that is not what is tested.)
  const second = query(8, 100);
  inst.enqueue(second.q);
  t.same([code(await first.outcome), code(await second.outcome)], ['answered', 'answered']);
  t.same(session.sides, [8, 8]);
  await inst.drain();
});

t.test('without sizes the profile curve decides, as before: the small query is refused too', async (t) => {
  const { inst, session } = await instance({ latency: large, loadMs: 1 });
  const little = query(8, 30);
  inst.enqueue(little.q);
  t.equal(code(await little.outcome), 'NO_CAPACITY');
  t.same(session.sides, []);
  await inst.drain();
});

t.test("the monitor's window compares each run with the prediction at its own size, not the largest size's curve", async (t) => {
  const { inst } = await instance(sized);
  inst.takeWindow(Date.now());
  const little = query(8, 1000);
  inst.enqueue(little.q);
  t.equal(code(await little.outcome), 'answered');
  const w = inst.takeWindow(Date.now());
  t.same(w.latency.get(1)?.length, 1, 'one run of one row observed');
  t.same(w.predicted.get(1), [5], 'predicted at 8x8: 5 ms (the reference curve says 60 ms)');
  t.equal(inst.latencyMs(1), 60, 'the reference curve is the largest size');
  await inst.drain();
});

t.test('capacity is judged at the input size the instance was sent, not the largest profiled', async (t) => {
  const { inst } = await instance(sized);
  // Before any traffic: the largest size's curve (4 rows in 200 ms plus overhead: under 20 rows/s).
  const before = inst.capacityQps;
  t.ok(before > 0 && before < 21, `largest size: ${before.toFixed(1)} rows/s`);
  for (let i = 0; i < 4; i++) {
    const q = query(8, 1000);
    inst.enqueue(q.q);
    await q.outcome;
  }
  inst.takeWindow();
  t.equal(inst.servedElements, SMALL, 'the window saw 8x8 inputs only');
  const after = inst.capacityQps;
  t.ok(after > 10 * before, `at 8x8 (4 rows in 12 ms): ${after.toFixed(1)} rows/s`);
  // A window without arrivals keeps the size last seen.
  inst.takeWindow();
  t.equal(inst.servedElements, SMALL);
  await inst.drain();
});
