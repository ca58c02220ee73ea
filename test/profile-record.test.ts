// What a finished measurement writes into each variant's profile, and how the event names the metric.
import t from 'tap';
import { accuracyNote, profileFields } from '../actors/profiler/profile-record.js';
import type { MeasureResult } from '../actors/profiler/profile-measure.js';

const curve = (batches: number[], ms: number) => batches.map((batch) => ({ batch, p50Ms: ms * batch, p99Ms: ms * batch, meanMs: ms * batch, runs: 3 }));
const base: MeasureResult = { loadMs: 10, peakMemoryBytes: 1000, latency: curve([1, 2, 4], 20) };

t.test('curves are cut at the variant\'s batch cap, every size\'s too', async (t) => {
  const r = { ...base, sizes: [{ shape: { x: [1, 3, 8, 8] }, elements: 192, latency: curve([1, 2, 4, 8], 5) }, { shape: { x: [1, 3, 16, 16] }, elements: 768, latency: curve([1, 2, 4], 20) }] };
  const f = profileFields(r, {}, 2);
  t.same(f.latency!.map((p) => p.batch), [1, 2]);
  t.same(f.sizes!.map((s) => s.latency.map((p) => p.batch)), [[1, 2], [1, 2]]);
  t.equal(profileFields(base, {}, 2).sizes, undefined, 'no sizes for a fixed-size model');
});

t.test('the metric travels with the accuracy; without a validation set the declared figure is named so', async (t) => {
  const fidelity = { samples: 4, output: 'map', maxAbsError: 0.3, relError: 0.1, cosine: 0.97, iou: 0.82, threshold: 0.3 };
  const measured = { ...base, accuracy: 0.9 * 0.82, accuracySource: 'fidelity' as const, metric: 'fidelity:iou', fidelity, validationSamples: 4 };
  t.match(profileFields(measured, { declaredAccuracy: 0.9 }, 4), { accuracy: 0.9 * 0.82, accuracySource: 'fidelity', metric: 'fidelity:iou', fidelity, validationSamples: 4 });
  t.equal(accuracyNote(measured, { declaredAccuracy: 0.9 }), ', fidelity:iou 0.820 x declared 0.9');
  t.match(profileFields(base, { declaredAccuracy: 0.8 }, 4), { accuracy: 0.8, accuracySource: 'declared', metric: 'declared' });
  t.equal(accuracyNote(base, { declaredAccuracy: 0.8 }), ', accuracy 80.00% (declared)');
  const top1 = { ...base, accuracy: 0.971, accuracySource: 'measured' as const, metric: 'top1', top5: 0.999 };
  t.match(profileFields(top1, {}, 4), { accuracy: 0.971, metric: 'top1', top5: 0.999 });
  t.equal(accuracyNote(top1, {}), ', accuracy 97.10% (top1)');
  t.equal(accuracyNote(base, {}), '');
});
