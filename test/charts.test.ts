// Benchmark charts: specs per chart from two synthetic policies, drawn to SVG by vega and to PNG by
// resvg; charts without data are left out; bench --json windows map to series.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { chartSpecs, fromBenchWindows, renderCharts, type ChartSeries, type ChartWindow } from '../bench/charts.js';
import { windowStats } from '../bench/live/stats.js';

/** Ten 1 s windows; the model-less policy switches variant at 5 s and runs a second worker from then. */
function synthetic(withCapacity: boolean): ChartSeries[] {
  const window = (policy: string, k: number): ChartWindow => {
    const switched = policy === 'model-less' && k >= 5;
    return {
      tS: k, offeredQps: 100, targetQps: 100, goodputQps: policy === 'fixed' ? 80 : 95,
      p50: 4 + k / 10, p99: policy === 'fixed' ? 30 : 12, violations: policy === 'fixed' ? 20 : 5, errors: 1,
      cost: 1e-6 * (switched ? 1 : 3), variants: { [switched ? 'small.fp32' : 'wide.int8']: 95 },
      ...(withCapacity ? { workers: switched ? 2 : 1, instances: switched ? 3 : 1 } : {}),
    };
  };
  return ['model-less', 'fixed'].map((policy) => ({ policy, objectiveMs: 15, windows: Array.from({ length: 10 }, (_, k) => window(policy, k)) }));
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

t.test('draws each chart to SVG with its marks, policies and axis titles, and to PNG when resvg loads', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'charts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = await renderCharts(synthetic(true), 'synthetic', dir);
  const names = ['load', 'latency', 'variants', 'capacity', 'cost', 'violations'];
  for (const name of names) {
    const svg = readFileSync(join(dir, `${name}.svg`), 'utf8');
    t.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, `${name}: an SVG document`);
    t.ok(svg.trimEnd().endsWith('</svg>'), `${name}: complete`);
    t.match(svg, /<path[^>]* d="M[^"]+"/, `${name}: has drawn marks`);
    t.match(svg, /<text[^>]*>window start \(s\)<\/text>/, `${name}: x axis title`);
    t.match(svg, /<text[^>]*>synthetic: /, `${name}: chart title`);
    t.ok('data' in JSON.parse(readFileSync(join(dir, `${name}.vl.json`), 'utf8')), `${name}: the spec carries its data`);
  }
  for (const name of ['load', 'latency', 'capacity', 'cost', 'violations']) {
    const svg = readFileSync(join(dir, `${name}.svg`), 'utf8');
    t.match(svg, />model-less<\/text>/, `${name}: policy in the legend`);
    t.match(svg, />fixed<\/text>/, `${name}: policy in the legend`);
  }
  const variants = readFileSync(join(dir, 'variants.svg'), 'utf8');
  t.match(variants, />small\.fp32<\/text>/, 'variants: the variant switched to is in the legend');
  t.match(variants, />wide\.int8<\/text>/);
  t.match(readFileSync(join(dir, 'latency.svg'), 'utf8'), />objective 15 ms<\/text>/, 'latency: the objective rule is labelled');
  t.match(readFileSync(join(dir, 'load.svg'), 'utf8'), />queries\/s<\/text>/, 'load: y axis title');

  if (result.png) {
    for (const name of names) t.same(readFileSync(join(dir, `${name}.png`)).subarray(0, 8), PNG_MAGIC, `${name}.png is a PNG`);
    t.equal(result.files.length, names.length * 3);
  } else {
    t.match(result.note, /resvg/, 'says why there is no PNG');
    t.equal(result.files.length, names.length * 2);
  }
  t.ok(result.files.every((f) => existsSync(f)), 'every file listed was written');
});

t.test('leaves out a chart whose data is absent', async (t) => {
  t.notOk('capacity' in chartSpecs(synthetic(false), 'x'), 'no workers or instances: no capacity chart');
  t.ok('capacity' in chartSpecs(synthetic(true), 'x'));
  const bare: ChartSeries[] = [{ policy: 'p', windows: [{ tS: 0, offeredQps: 10, goodputQps: 9 }, { tS: 1, offeredQps: 10, goodputQps: 10 }] }];
  t.same(Object.keys(chartSpecs(bare, 'x')), ['load'], 'only load when windows carry nothing else');
  t.same(Object.keys(chartSpecs([], 'x')), [], 'nothing to draw without series');

  const dir = mkdtempSync(join(tmpdir(), 'charts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await renderCharts(synthetic(false), 'x', dir, { png: false });
  t.notOk(existsSync(join(dir, 'capacity.svg')), 'no file for a skipped chart');
  t.notOk(existsSync(join(dir, 'load.png')), 'no PNG when not asked for');
});

t.test('says so when resvg has no font, and still writes the PNGs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'charts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = await renderCharts(synthetic(false), 'x', dir, { systemFonts: false });
  if (!result.png) return t.pass(`no PNG to check: ${result.note}`);
  t.match(result.note, /PNG text is blank/);
  t.ok(existsSync(join(dir, 'load.png')));
});

t.test('maps bench windows to a series: overall dropped, warmup kept, start as time', async (t) => {
  const answer = (seq: number, sentAt: number, variant: string) => ({ seq, sentAt, doneAt: sentAt + 5, ok: true, variant, cost: 1e-6 });
  const outcomes = [answer(0, 100, 'a'), answer(1, 1100, 'b'), answer(2, 1200, 'b')];
  const windows = [
    windowStats(outcomes, { window: '0', fromS: 0, toS: 1, warmup: true }, 10),
    windowStats(outcomes, { window: '1', fromS: 1, toS: 2, warmup: false }, 10),
    windowStats(outcomes, { window: 'overall', fromS: 1, toS: 2, warmup: false }, 10),
  ];
  const s = fromBenchWindows('model-less', windows, 10);
  t.equal(s.policy, 'model-less');
  t.equal(s.objectiveMs, 10);
  t.same(s.windows.map((w) => w.tS), [0, 1]);
  t.same(s.windows.map((w) => w.variants), [{ a: 1 }, { b: 2 }]);
  t.same(s.windows.map((w) => [w.offeredQps, w.goodputQps, w.p99, w.violations, w.errors]), [[1, 1, 5, 0, 0], [2, 2, 5, 0, 0]]);
  t.equal(s.windows[1].cost, 2e-6);
});
