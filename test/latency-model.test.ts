// The latency model predicts a call's p50 from its rows and its input size: interpolated between
// profiled sizes, the smallest below them, proportional to elements above the largest, and exactly
// the profile's own curve when it has no sizes.
import t from 'tap';
import { latencyCurve, latencyModel, predictLatencyMs, sampleElements, sizeBlend, stepLatencyMs } from '../actors/instance/latency.js';
import type { TensorSpec } from '../schemas/tensor.js';

// A detector profiled at 256x256 (196,608 elements) and 640x640 (1,228,800); `latency` is the largest size's.
const E256 = 3 * 256 * 256;
const E640 = 3 * 640 * 640;
const at256 = [{ batch: 1, p50Ms: 17 }, { batch: 4, p50Ms: 60 }];
const at640 = [{ batch: 1, p50Ms: 100 }, { batch: 4, p50Ms: 380 }];
const det = { latency: at640, sizes: [{ elements: E256, latency: at256 }, { elements: E640, latency: at640 }] };

t.test('at a profiled size: that size curve, interpolated in rows as latencyCurve does', async (t) => {
  t.equal(predictLatencyMs(det, 1, E256), 17);
  t.equal(predictLatencyMs(det, 1, E640), 100);
  t.equal(predictLatencyMs(det, 2, E256), latencyCurve(at256)(2));
  t.equal(predictLatencyMs(det, 8, E640), latencyCurve(at640)(8), 'beyond the last batch: per query, as before');
});

t.test('between two sizes: linear in elements, at the same rows', async (t) => {
  const mid = (E256 + E640) / 2;
  t.equal(predictLatencyMs(det, 1, mid), (17 + 100) / 2);
  t.equal(predictLatencyMs(det, 4, mid), (60 + 380) / 2);
  const quarter = E256 + (E640 - E256) / 4;
  t.equal(predictLatencyMs(det, 1, quarter), 17 + (100 - 17) / 4);
});

t.test('below the smallest size: the smallest (nothing smaller was measured)', async (t) => {
  t.equal(predictLatencyMs(det, 1, 3 * 32 * 32), 17);
  t.equal(predictLatencyMs(det, 4, 0), 60);
});

t.test('above the largest size: extrapolated in proportion to elements', async (t) => {
  const e1024 = 3 * 1024 * 1024;
  t.equal(predictLatencyMs(det, 1, e1024), 100 * e1024 / E640);
  t.equal(predictLatencyMs(det, 4, 2 * E640), 760);
  t.same(sizeBlend(det.sizes, 2 * E640), { lo: 1, hi: 1, w: 0, scale: 2 });
});

t.test('no sizes, or no elements: exactly the profile curve, as before sizes existed', async (t) => {
  const plain = { latency: at640 };
  for (const b of [1, 2, 4, 9]) {
    t.equal(predictLatencyMs(plain, b, E256), latencyCurve(at640)(b));
    t.equal(predictLatencyMs(det, b), latencyCurve(at640)(b), 'a query of unknown size: the largest profiled');
    t.equal(latencyModel(plain)(E256)(b), latencyCurve(at640)(b));
  }
  t.equal(latencyModel(undefined)(E256)(4), 0, 'not profiled yet: no latency, as latencyCurve([])');
  const m = latencyModel(plain);
  t.equal(m(E256), m(1), 'one curve for every size');
});

t.test('latencyModel remembers a curve per size and agrees with predictLatencyMs', async (t) => {
  const model = latencyModel(det);
  t.equal(model(E256), model(E256), 'the same curve object for the same size');
  for (const e of [1, E256, 500_000, E640, 2 * E640]) for (const b of [1, 3, 4, 6]) t.equal(model(e)(b), predictLatencyMs(det, b, e));
});

t.test('the selection policy reading (smallest profiled batch that holds it) blends sizes exactly as the curves do', async (t) => {
  for (const e of [0, E256, 300_000, (E256 + E640) / 2, E640, 3 * E640, undefined]) {
    for (const b of [1, 4]) t.equal(stepLatencyMs(det, b, e), predictLatencyMs(det, b, e), `batch ${b} at ${e ?? 'no size'}`);
    t.equal(stepLatencyMs(det, 3, e), stepLatencyMs(det, 4, e), 'batch 3 is read at the profiled batch 4');
    t.equal(stepLatencyMs(det, 5, e), undefined, 'no profiled batch holds 5');
  }
  t.equal(stepLatencyMs({ latency: at640 }, 2, E256), 380, 'no sizes: the profile curve, whatever the size');
});

t.test('sizes given out of order are sorted; a size with no points is ignored', async (t) => {
  const shuffled = { latency: at640, sizes: [{ elements: E640, latency: at640 }, { elements: 1000, latency: [] }, { elements: E256, latency: at256 }] };
  t.equal(predictLatencyMs(shuffled, 1, (E256 + E640) / 2), (17 + 100) / 2);
  t.equal(predictLatencyMs(shuffled, 1, 10), 17);
});

t.test('sampleElements: every input, its batch axis excluded, whatever the rows', async (t) => {
  const image: TensorSpec[] = [{ name: 'x', dtype: 'float32', shape: [null, 3, null, null] }];
  t.equal(sampleElements({ x: { shape: [1, 3, 256, 256] } }, image), E256);
  t.equal(sampleElements({ x: { shape: [5, 3, 256, 256] } }, image), E256, 'five rows: the same per sample');
  t.equal(sampleElements({ x: { dims: [2, 3, 640, 640] } }, image), E640, 'a session feed (dims) counts the same');
  // A recurrent state batched on axis 1 and a scalar setting without a batch axis: counted whole.
  const rnn: TensorSpec[] = [
    { name: 'tokens', dtype: 'int64', shape: [null, null] },
    { name: 'state', dtype: 'float32', shape: [2, null, 128], batchAxis: 1 },
    { name: 'temperature', dtype: 'float32', shape: [], batchAxis: null },
    { name: 'mask', dtype: 'float32', shape: [4, 4], batchAxis: null },
  ];
  const q = { tokens: { shape: [3, 40] }, state: { shape: [2, 3, 128] }, temperature: { shape: [] }, mask: { shape: [4, 4] } };
  t.equal(sampleElements(q, rnn), 40 + 256 + 1 + 16);
  t.equal(sampleElements({ y: { shape: [7, 10] } }, []), 10, 'an input without a spec: batched on axis 0');
});

t.test('roundElements keeps 7 significant bits and never returns 0', async (t) => {
  const { roundElements } = await import('../actors/instance/latency.js');
  t.equal(roundElements(192), 192);
  t.equal(roundElements(3 * 640 * 640), 3 * 640 * 640, 'a power-of-two multiple stays exact');
  for (const e of [1.4, 77.7, 1000.3, 123_457, 9_999_999]) {
    const r = roundElements(e);
    t.ok(Math.abs(r - e) / e <= 0.008 || Math.abs(r - e) <= 0.5, `${e} -> ${r}`);
  }
  t.equal(roundElements(0), 1);
  t.equal(roundElements(Number.NaN), 1);
});
