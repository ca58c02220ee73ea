// Benchmark reports as pictures: one Vega-Lite spec per chart with the policies side by side,
// compiled by vega-lite, drawn headless to SVG by vega, and to PNG by resvg when its native binding loads.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { WindowStats } from './live/stats.js';

export type VegaLiteSpec = TopLevelSpec;

/** One window of one run, whatever produced it (the live bench, the trace simulator). */
export interface ChartWindow {
  /** Window start, seconds. */
  tS: number;
  offeredQps: number;
  targetQps?: number;
  goodputQps: number;
  achievedQps?: number;
  p99?: number | null;
  p50?: number | null;
  violations?: number;
  errors?: number;
  /** Dollars spent in the window. */
  cost?: number;
  workers?: number;
  instances?: number;
  /** Answers per variant (or instances per variant) in the window. */
  variants?: Record<string, number>;
}

export interface ChartSeries { policy: string; objectiveMs?: number; windows: ChartWindow[] }

export interface RenderOptions {
  /** Also write PNGs (default true); skipped, with a note, when @resvg/resvg-js does not load. */
  png?: boolean;
  /** Font files for PNG text, for machines without system fonts. */
  fontFiles?: string[];
  /** Let resvg load the system's fonts (default true). */
  systemFonts?: boolean;
}

export interface RenderResult { files: string[]; png: boolean; note?: string }

/**
 * The fields of a bench window a chart reads. The fleet and target fields are optional so reports
 * written before `infaas bench` sampled them still load.
 */
export type BenchWindow = Pick<WindowStats, 'window' | 'fromS' | 'offeredQps' | 'goodputQps' | 'achievedQps' | 'p50' | 'p99' | 'violations' | 'errors' | 'cost' | 'variants'>
  & { targetQps?: number | null; workers?: number | null };

const orUndefined = (x: number | null | undefined): number | undefined => x ?? undefined;

/** `infaas bench` windows as a series: the "overall" row left out, warmup windows kept, each at its start. */
export function fromBenchWindows(policy: string, windows: readonly BenchWindow[], objectiveMs?: number): ChartSeries {
  return {
    policy, objectiveMs,
    windows: windows.filter((w) => w.window !== 'overall').map((w) => ({
      tS: w.fromS, offeredQps: w.offeredQps, targetQps: orUndefined(w.targetQps), goodputQps: w.goodputQps, achievedQps: w.achievedQps,
      p99: w.p99, p50: w.p50, violations: w.violations, errors: w.errors, cost: w.cost, workers: orUndefined(w.workers), variants: { ...w.variants },
    })),
  };
}

interface Row { policy: string; tS: number; measure: string; value: number }
interface Measure { label: string; get: (w: ChartWindow) => number | null | undefined }

const WIDTH = 640;
const HEIGHT = 240;
const X = { field: 'tS', type: 'quantitative', title: 'window start (s)' } as const;

// A list, not vega's bare sans-serif: resvg maps sans-serif to Arial and, without it, falls back to
// whatever font it finds first (a serif one on Debian); SVG viewers take the first family they have.
const CONFIG = { font: 'Helvetica, Arial, Liberation Sans, DejaVu Sans, Noto Sans, sans-serif' };

// Dashes drawn as lines in the legend: vega-lite draws a line-with-points legend as filled dots, which hide the dash.
const DASH_LEGEND = { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 500, encode: { symbols: { update: { stroke: { value: '#333' } } } } };

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Long-format rows (one per policy, window and measure) of the measures a window has. */
function rowsOf(series: readonly ChartSeries[], measures: readonly Measure[]): Row[] {
  return series.flatMap((s) => s.windows.flatMap((w) => measures.flatMap((m) => {
    const value = m.get(w);
    return isNumber(value) ? [{ policy: s.policy, tS: w.tS, measure: m.label, value }] : [];
  })));
}

const heading = (title: string, text: string, subtitle: string) => ({ text: `${title}: ${text}`, subtitle, anchor: 'start' as const });

/** Colour by policy, in the order given, so a policy keeps its colour across charts. */
const policyColor = (series: readonly ChartSeries[]) =>
  ({ field: 'policy', type: 'nominal', title: 'policy', scale: { domain: series.map((s) => s.policy) }, legend: { labelLimit: 0 } }) as const;

/** Lines over time, colour = policy and dash = measure when there are several; counts as steps; optional horizontal rules. */
function lineChart(series: readonly ChartSeries[], o: {
  title: object; yTitle: string; measures: readonly Measure[]; counts?: boolean; rules?: { value: number; label: string }[];
}): VegaLiteSpec | undefined {
  const rows = rowsOf(series, o.measures);
  if (rows.length === 0) return undefined;
  const present = o.measures.map((m) => m.label).filter((label) => rows.some((r) => r.measure === label));
  const encoding = {
    x: X,
    y: { field: 'value', type: 'quantitative', title: o.yTitle, ...(o.counts ? { axis: { tickMinStep: 1 } } : {}) },
    color: policyColor(series),
    ...(present.length > 1 ? { strokeDash: { field: 'measure', type: 'nominal', title: 'measure', scale: { domain: present }, legend: DASH_LEGEND } } : {}),
  };
  const lines = { mark: { type: 'line', strokeWidth: 1.5, point: { size: 14 }, ...(o.counts ? { interpolate: 'step-after' } : {}) }, encoding };
  const rules = o.rules ?? [];
  const layer = rules.length === 0 ? [lines] : [
    lines,
    { data: { values: rules }, mark: { type: 'rule', color: '#333', strokeDash: [6, 3] }, encoding: { y: { field: 'value', type: 'quantitative' } } },
    { data: { values: rules }, mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 4, dy: -2, color: '#333' },
      encoding: { x: { value: 0 }, y: { field: 'value', type: 'quantitative' }, text: { field: 'label' } } },
  ];
  return { title: o.title, config: CONFIG, width: WIDTH, height: HEIGHT, data: { values: rows }, layer } as VegaLiteSpec;
}

/** Answers per variant per window, stacked, one row per policy; step-shaped since a window is an interval. */
function variantChart(series: readonly ChartSeries[], title: string): VegaLiteSpec | undefined {
  const rows: { policy: string; tS: number; variant: string; value: number }[] = [];
  for (const s of series) {
    const windows = [...s.windows].sort((a, b) => a.tS - b.tS);
    const names = [...new Set(windows.flatMap((w) => Object.keys(w.variants ?? {})))].sort();
    if (names.length === 0) continue;
    // Zeros where a variant did not answer, and the last window closed at its end, so each area is exact.
    const last = windows[windows.length - 1];
    const end = last.tS + (windows.length > 1 ? last.tS - windows[windows.length - 2].tS : 1);
    for (const [tS, w] of [...windows.map((w) => [w.tS, w] as const), [end, last] as const]) {
      for (const variant of names) rows.push({ policy: s.policy, tS, variant, value: w.variants?.[variant] ?? 0 });
    }
  }
  if (rows.length === 0) return undefined;
  const policies = series.map((s) => s.policy).filter((p) => rows.some((r) => r.policy === p));
  const variants = [...new Set(rows.map((r) => r.variant))].sort();
  return {
    config: CONFIG,
    title: heading(title, 'variant chosen', 'answers per variant in each window, stacked; one row per policy'),
    data: { values: rows },
    width: WIDTH, height: Math.max(60, Math.round(HEIGHT / 2)),
    mark: { type: 'area', interpolate: 'step-after' },
    encoding: {
      x: X,
      y: { field: 'value', type: 'quantitative', stack: 'zero', title: 'answers' },
      // Not the policies' palette, so a variant's colour is not read as a policy.
      color: {
        field: 'variant', type: 'nominal', title: 'variant',
        scale: { domain: variants, scheme: variants.length <= 8 ? 'dark2' : 'tableau20' }, legend: { labelLimit: 0 },
      },
      order: { field: 'variant' },
      row: { field: 'policy', type: 'nominal', title: null, sort: policies, header: { labelAngle: 0, labelAlign: 'left', labelFontSize: 12 } },
    },
  } as VegaLiteSpec;
}

/** Cumulative and per-window dollars, one panel each, each with its own y scale. */
function costChart(series: readonly ChartSeries[], title: string): VegaLiteSpec | undefined {
  const rows: Row[] = [];
  for (const s of series) {
    let total = 0;
    for (const w of [...s.windows].sort((a, b) => a.tS - b.tS)) {
      if (!isNumber(w.cost)) continue;
      total += w.cost;
      rows.push({ policy: s.policy, tS: w.tS, measure: 'cumulative', value: total }, { policy: s.policy, tS: w.tS, measure: 'per window', value: w.cost });
    }
  }
  if (rows.length === 0) return undefined;
  // Bench costs are micro-dollars: fixed-point would print 0.00 on every tick, and d3 writes zero as 0e+0.
  const axis = Math.max(...rows.map((r) => r.value)) < 0.01
    ? { labelExpr: "datum.value === 0 ? '0' : format(datum.value, '.2~e')" }
    : { format: '$,.4~f' };
  return {
    config: CONFIG,
    title: heading(title, 'cost', 'dollars: running total (top) and spent in each window (bottom)'),
    data: { values: rows },
    facet: { row: { field: 'measure', type: 'nominal', title: null, sort: ['cumulative', 'per window'], header: { labelAngle: 0, labelAlign: 'left', labelFontSize: 12 } } },
    spec: {
      width: WIDTH, height: Math.round(HEIGHT * 0.6),
      mark: { type: 'line', strokeWidth: 1.5, point: { size: 14 } },
      encoding: { x: X, y: { field: 'value', type: 'quantitative', title: 'dollars', axis }, color: policyColor(series) },
    },
    resolve: { scale: { y: 'independent' } },
  } as VegaLiteSpec;
}

/** One spec per chart that has data, keyed by file name: load, latency, variants, capacity, cost, violations. */
export function chartSpecs(series: readonly ChartSeries[], title: string): Record<string, VegaLiteSpec> {
  const objectives = [...new Set(series.map((s) => s.objectiveMs).filter(isNumber))].sort((a, b) => a - b);
  const charts: Record<string, VegaLiteSpec | undefined> = {
    load: lineChart(series, {
      title: heading(title, 'load', 'offered and goodput (answers within the objective) per second'), yTitle: 'queries/s',
      measures: [{ label: 'offered', get: (w) => w.offeredQps }, { label: 'target', get: (w) => w.targetQps }, { label: 'goodput', get: (w) => w.goodputQps }],
    }),
    latency: lineChart(series, {
      title: heading(title, 'latency', 'client-side latency of answers per window; dashed rule: the objective'), yTitle: 'latency (ms)',
      measures: [{ label: 'p99', get: (w) => w.p99 }, { label: 'p50', get: (w) => w.p50 }],
      rules: objectives.map((ms) => ({ value: ms, label: `objective ${ms} ms` })),
    }),
    variants: variantChart(series, title),
    capacity: lineChart(series, {
      title: heading(title, 'capacity', 'workers and model instances running, held until the next window'), yTitle: 'count', counts: true,
      measures: [{ label: 'workers', get: (w) => w.workers }, { label: 'instances', get: (w) => w.instances }],
    }),
    cost: costChart(series, title),
    violations: lineChart(series, {
      title: heading(title, 'violations', 'queries per window answered late or not at all (errors are part of violations)'), yTitle: 'queries',
      measures: [{ label: 'violations', get: (w) => w.violations }, { label: 'errors', get: (w) => w.errors }],
    }),
  };
  return Object.fromEntries(Object.entries(charts).filter((e): e is [string, VegaLiteSpec] => e[1] !== undefined));
}

/** A Vega-Lite spec drawn headless: no canvas, so vega estimates text widths from font size. */
export async function toSvg(spec: VegaLiteSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

interface Rasteriser { png(svg: string): Buffer; hasText: boolean }

/** resvg, when its native binding loads, with whether its fonts draw any text at all. */
async function loadRasteriser(o: RenderOptions): Promise<Rasteriser | string> {
  let Resvg: typeof import('@resvg/resvg-js').Resvg;
  try {
    const mod = await import('@resvg/resvg-js');
    Resvg = mod.Resvg ?? (mod as unknown as { default: typeof mod }).default.Resvg;
  } catch (err) {
    return `PNG skipped, SVG only: @resvg/resvg-js did not load (${(err as Error).message.split('\n')[0]})`;
  }
  const font = { loadSystemFonts: o.systemFonts ?? true, fontFiles: o.fontFiles ?? [] };
  // 2x so the text stays legible when the picture is shown at page width.
  const png = (svg: string) => new Resvg(svg, { font, fitTo: { mode: 'zoom', value: 2 }, background: 'white' }).render().asPng();
  // resvg falls back to any font it has, and draws nothing when it has none: ask it to draw a word.
  const probe = new Resvg('<svg xmlns="http://www.w3.org/2000/svg" width="60" height="30"><text x="4" y="22" font-family="sans-serif" font-size="20">Ag</text></svg>', { font }).render();
  let ink = 0;
  for (let i = 3; i < probe.pixels.length; i += 4) if (probe.pixels[i] > 0) ink++;
  return { png, hasText: ink > 0 };
}

/** Writes `<name>.vl.json`, `<name>.svg` and, when resvg loads, `<name>.png` per chart into `outDir`. */
export async function renderCharts(series: readonly ChartSeries[], title: string, outDir: string, options: RenderOptions = {}): Promise<RenderResult> {
  const specs = chartSpecs(series, title);
  mkdirSync(outDir, { recursive: true });
  const rasteriser = options.png === false ? undefined : await loadRasteriser(options);
  const files: string[] = [];
  const write = (name: string, body: string | Buffer) => { const path = join(outDir, name); writeFileSync(path, body); files.push(path); };
  for (const [name, spec] of Object.entries(specs)) {
    write(`${name}.vl.json`, JSON.stringify(spec, null, 2) + '\n');
    const svg = await toSvg(spec);
    write(`${name}.svg`, svg);
    if (typeof rasteriser === 'object') write(`${name}.png`, rasteriser.png(svg));
  }
  if (typeof rasteriser === 'string') return { files, png: false, note: rasteriser };
  if (rasteriser && !rasteriser.hasText) {
    return { files, png: true, note: 'PNG text is blank: resvg found no font (install one, e.g. fonts-dejavu-core, or pass fontFiles); the SVGs are fine' };
  }
  return { files, png: rasteriser !== undefined };
}
