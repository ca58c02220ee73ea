// Inline or threaded: the same variant run on the event loop (InlineSession) and on its own session
// thread (ThreadedSession), one run at a time, interleaved, timed as the instance host sees a run
// (call to resolved promise). The worker runs a variant inline when its profiled largest batch
// takes at most 1 ms (docs/worker.md); this is the measurement behind that threshold.
// Usage: npm run bench:inline [-- --write] [--runs N]
import { performance } from 'node:perf_hooks';
import { InlineSession } from '../runtime/onnx/inline-session.js';
import type { SessionConfig } from '../runtime/onnx/onnx-session.js';
import { ThreadedSession, type Feed } from '../runtime/onnx/threaded-session.js';
import { formatTable, fmtMs } from '../runtime/table.js';
import { loadSplit } from '../zoo/data.js';
import { zooModelBytes } from '../zoo/index.js';
import { machineLine, writeSection } from './machine.js';

const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 2000;
const WARMUP = 200;
const CASES: { model: string; batch: number }[] = [
  { model: 'mlp-small', batch: 1 }, { model: 'cnn-small', batch: 1 }, { model: 'cnn-small', batch: 32 },
  { model: 'cnn-wide', batch: 1 }, { model: 'cnn-wide', batch: 8 },
];
const config: SessionConfig = { graphOptimizationLevel: 'all', intraOpThreads: 1, executionProvider: 'cpu' };
const images = loadSplit('validation', 64).images;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

const rows: (string | number)[][] = [];
const verdicts: string[] = [];
for (const c of CASES) {
  const bytes = zooModelBytes(c.model);
  const inline = await InlineSession.open(bytes, config);
  const threaded = await ThreadedSession.open(bytes, config);
  // A fresh feed per run: a threaded run takes ownership of (transfers) the buffer it is given.
  const feed = (i: number): Record<string, Feed> => {
    const data = new Float32Array(c.batch * 784);
    for (let r = 0; r < c.batch; r++) data.set(images.subarray(((i + r) % 64) * 784, ((i + r) % 64 + 1) * 784), r * 784);
    return { image: { dtype: 'float32', dims: [c.batch, 1, 28, 28], data } };
  };
  const t = { inline: [] as number[], threaded: [] as number[], ort: [] as number[] };
  const runs = c.model === 'cnn-wide' ? Math.max(200, Math.floor(RUNS / 8)) : RUNS;
  for (let i = 0; i < WARMUP + runs; i++) {
    let t0 = performance.now();
    const a = await inline.run(feed(i));
    const inl = performance.now() - t0;
    t0 = performance.now();
    await threaded.run(feed(i));
    const thr = performance.now() - t0;
    if (i >= WARMUP) { t.inline.push(inl); t.threaded.push(thr); t.ort.push(a.ms); }
  }
  await inline.close();
  await threaded.close();
  const name = `${c.model} batch ${c.batch}`;
  rows.push([name, fmtMs(pct(t.ort, 0.5)), fmtMs(pct(t.inline, 0.5)), fmtMs(pct(t.inline, 0.99)), fmtMs(pct(t.threaded, 0.5)), fmtMs(pct(t.threaded, 0.99)), `x${(pct(t.threaded, 0.5) / pct(t.inline, 0.5)).toFixed(2)}`]);
  verdicts.push(`${name}: a threaded run costs ${fmtMs(pct(t.threaded, 0.5) - pct(t.inline, 0.5))} ms more at the median than an inline one`);
}
const table = formatTable(['variant (fp32, opt all, 1 thread)', 'session.run p50', 'inline p50', 'inline p99', 'threaded p50', 'threaded p99', 'threaded / inline'], rows);
const text = [
  '## Inline or threaded runs (bench/inline.ts)',
  '',
  `Machine: ${machineLine()}. Run: ${new Date().toISOString()}.`,
  '',
  `Method: \`npm run bench:inline\` opens each zoo model twice with the worker's own session classes, InlineSession (ONNX Runtime on this`,
  `event loop) and ThreadedSession (its own worker thread), and runs them one call at a time, interleaved, ${RUNS} runs each after ${WARMUP}`,
  '(cnn-wide: an eighth as many), timing each call as the instance host does: from the call to the resolved promise, tensors in and out',
  'included. "session.run p50" is ONNX Runtime\'s own time inside the inline call. Nothing else runs: on a busy worker, an inline run',
  'also holds up the event loop for its duration, which is why only variants whose largest batch takes at most 1 ms run inline.',
  '',
  '```', table, '```', '',
  verdicts.join('; ') + '.',
].join('\n');
process.stdout.write(`${text}\n`);
if (args.includes('--write')) writeSection(new URL('../docs/benchmarks.md', import.meta.url).pathname, 'inline', text);
