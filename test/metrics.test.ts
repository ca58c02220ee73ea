// Accuracy metrics: top-1/top-5 per row, greedy CTC decoding as PaddleOCR does it, and the fidelity
// of a variant's output to the reference's.
import t from 'tap';
import { addFidelity, agreementFigure, classHits, ctcGreedyDecode, fidelityOf, fidelitySums } from '../runtime/metrics.js';

t.test('top-1 and top-5 count each row against its label', async (t) => {
  // Three rows of six classes: row 0 best is 2, row 1 best is 5 (label 0 is 6th: outside top-5), row 2 ties 1 and 3 (lower index wins).
  const v = Float32Array.of(
    0.1, 0.2, 0.9, 0.3, 0.0, 0.0,
    0.0, 0.5, 0.4, 0.3, 0.2, 0.9,
    0.1, 0.7, 0.0, 0.7, 0.2, 0.3,
  );
  t.same(classHits(v, 6, [2, 0, 1]), { rows: 3, top1: 2, top5: 2 });
  t.same(classHits(v, 6, [3, 1, 3]), { rows: 3, top1: 0, top5: 3 });
  t.throws(() => classHits(v, 6, [1, 2]), /3 rows of 6 classes but 2 labels/);
});

t.test('a single-value output is read as a rounded class index', async (t) => {
  t.same(classHits(Float32Array.of(0.2, 0.8, 2.4), 1, [0, 1, 1]), { rows: 3, top1: 2, top5: 2 });
});

t.test('greedy CTC decoding collapses repeats and drops blanks', async (t) => {
  const charset = ['a', 'b', 'c'];
  const steps = (ks: number[]) => {
    const v = new Float32Array(ks.length * 4);
    ks.forEach((k, i) => { v[i * 4 + k] = 1; });
    return v;
  };
  // blank 0: class k is charset[k - 1], as PaddleOCR's recogniser has it.
  t.equal(ctcGreedyDecode(steps([0, 1, 1, 0, 1, 2, 2, 0, 3]), 4, charset), 'aabc', 'a blank separates a doubled letter; repeats collapse');
  t.equal(ctcGreedyDecode(steps([0, 0, 0]), 4, charset), '', 'all blank is the empty string');
  // blank 3 (last): class k is charset[k].
  t.equal(ctcGreedyDecode(steps([0, 3, 0, 1, 1, 2]), 4, charset, 3), 'aabc');
});

t.test('identical outputs have perfect fidelity', async (t) => {
  const r = Float32Array.of(0.1, 0.9, 0.8, 0.2);
  const s = fidelitySums(true, 0.5);
  addFidelity(s, r, r, 2);
  t.same(fidelityOf(s, 1, 'y'), { samples: 1, output: 'y', maxAbsError: 0, relError: 0, cosine: 1, argmaxAgreement: 1, iou: 1, threshold: 0.5 });
});

t.test('fidelity figures of a damaged output', async (t) => {
  const ref = Float32Array.of(0.9, 0.1, 0.2, 0.8, 0.6, 0.4);
  const var_ = Float32Array.of(0.8, 0.2, 0.6, 0.4, 0.7, 0.3);
  const s = fidelitySums(true, 0.5);
  addFidelity(s, var_, ref, 2);
  const f = fidelityOf(s, 1, 'y');
  t.equal(f.argmaxAgreement, 2 / 3, 'row 1 flips from class 1 to class 0');
  t.ok(Math.abs(f.maxAbsError - 0.4) < 1e-6);
  t.ok(Math.abs(f.relError - 1.2 / 3) < 1e-6, 'mean |diff| over mean |reference|');
  // Above 0.5: reference {0, 3, 4}, variant {0, 2, 4}: intersection 2, union 4.
  t.equal(f.iou, 0.5);
  const dot = 0.72 + 0.02 + 0.12 + 0.32 + 0.42 + 0.12;
  const norm = (a: Float32Array) => Math.sqrt(a.reduce((x, v) => x + v * v, 0));
  t.ok(Math.abs(f.cosine - dot / (norm(ref) * norm(var_))) < 1e-6);
});

t.test('fidelity accumulates over samples; empty maps agree; no argmax without a class axis', async (t) => {
  const s = fidelitySums(false, 0.3);
  addFidelity(s, Float32Array.of(0, 0.1), Float32Array.of(0, 0.2), 2);
  addFidelity(s, Float32Array.of(0.1, 0), Float32Array.of(0.1, 0), 2);
  const f = fidelityOf(s, 2, 'map');
  t.equal(f.iou, 1, 'nothing above the threshold in either: they agree there is nothing');
  t.equal(f.argmaxAgreement, undefined);
  t.ok(Math.abs(f.relError - 0.1 / 0.3) < 1e-6);
  t.throws(() => addFidelity(s, Float32Array.of(1), Float32Array.of(1, 2), 1), /1 values, the reference's 2/);
});

t.test('a non-finite variant output cannot look faithful', async (t) => {
  const s = fidelitySums(true);
  addFidelity(s, Float32Array.of(NaN, 1), Float32Array.of(0.5, 1), 2);
  const f = fidelityOf(s, 1, 'y');
  t.equal(f.maxAbsError, Number.MAX_VALUE);
  t.ok(f.relError >= 1);
  t.ok(f.cosine <= 0);
});

t.test('the agreement figure: a negative cosine counts as 0', async (t) => {
  const f = { samples: 1, output: 'y', maxAbsError: 2, relError: 2, cosine: -1, argmaxAgreement: 0.25, iou: 0.5 };
  t.equal(agreementFigure(f, 'cosine'), 0);
  t.equal(agreementFigure(f, 'argmax'), 0.25);
  t.equal(agreementFigure(f, 'iou'), 0.5);
});
