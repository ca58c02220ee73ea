// `infaas bench` against a real system (nats-server, registrar, profiler, dispatcher, worker, ONNX
// Runtime): every query gets one outcome, answers are checked against labels, outputs parse.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { loadSplit } from '../zoo/data.js';
import { ZOO_TASK } from '../zoo/index.js';
import { profileAccuracy, runBench } from '../bench/live/run.js';
import { CSV_COLUMNS, toCsv, writeOutputs } from '../bench/live/report.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { registerZooModel, VALIDATION_SAMPLES } from './helpers/zoo.js';

const BIN = new URL('../bin/infaas.js', import.meta.url).pathname;

function infaas(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const parseCsv = (text: string) => text.trim().split('\n').map((l) => l.split(','));

t.test('a short open-loop bench against a live system', async (t) => {
  const sys = await startTestSystem(t);
  const info = await registerZooModel(sys.client, 'mlp-small');
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  await startTestWorker(t, sys, { threads: 2 });
  const dir = mkdtempSync(join(tmpdir(), 'infaas-bench-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  // Serving is ready once one query is answered (the dispatcher learns of the worker from KV).
  const { images } = loadSplit('validation', 1);
  const qc = new QueryClient(sys.nc);
  for (let i = 0; ; i++) {
    try {
      await qc.query({ task: ZOO_TASK, inputs: { image: arrayToTensor('float32', [1, 1, 28, 28], images) }, slo: { latencyMs: 2000 } });
      break;
    } catch (err) {
      if (i >= 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // The digits the profiler measured accuracy on, about once each in the measured 3 s (~100 q/s):
  // a smaller sample of them is too noisy to compare (60 digits measured 0.70 against 0.86).
  const windows: string[] = [];
  const digits = loadSplit('validation', VALIDATION_SAMPLES);
  const report = await runBench({ nc: sys.nc, accuracyOf: profileAccuracy(sys.stores), onWindow: (w) => windows.push(w.window), digits }, {
    load: { kind: 'open', rate: VALIDATION_SAMPLES / 3 }, target: { task: ZOO_TASK }, latencyMs: 1000,
    durationS: 3, warmupS: 0.5, windowS: 1, seed: 3, retry: true,
  });
  t.comment(`overall: ${JSON.stringify({ ...report.overall, variants: undefined })}`);

  t.ok(report.sent > 0, `${report.sent} queries sent`);
  t.same(report.outcomes.map((o) => o.seq), Array.from({ length: report.sent }, (_, i) => i), 'every query sent has exactly one outcome');
  t.same(windows, report.windows.map((w) => w.window), 'a progress call per window');
  t.same(report.windows.map((w) => [w.fromS, w.toS, w.warmup]), [[0, 0.5, true], [0.5, 1.5, false], [1.5, 2.5, false], [2.5, 3.5, false]]);
  const o = report.overall;
  t.equal(o.sent, report.windows.filter((w) => !w.warmup).reduce((s, w) => s + w.sent, 0), 'the overall is the measured windows');
  t.ok(o.answered > 0, `${o.answered} answers`);
  t.equal(o.answered + o.errors, o.sent);
  t.ok(o.errors <= o.sent * 0.1, `errors ${JSON.stringify(o.errorsByCode)} are at most 10 % of queries at ~100 q/s`);
  const measured = Math.max(...info.variants.map((v) => v.profiles['cpu-test']?.accuracy ?? 0));
  t.ok(o.accuracyDelivered! >= 0 && o.accuracyDelivered! <= 1, `accuracy delivered ${o.accuracyDelivered}`);
  t.ok(Math.abs(o.accuracyDelivered! - measured) <= 0.15, `near the model's measured accuracy ${measured}`);
  t.ok(o.accuracyPromised !== null && Math.abs(o.accuracyPromised - measured) <= 0.05, `promised ${o.accuracyPromised}: the answering variants' measured accuracy`);
  t.ok(o.cost > 0 && o.costPerQuery! > 0, 'answers carry a cost');
  t.ok(o.p50! <= o.p90! && o.p90! <= o.p95! && o.p95! <= o.p99!, 'percentiles are ordered');

  const csv = join(dir, 'b.csv');
  const json = join(dir, 'b.json');
  writeOutputs(report, { csv, json }, { command: 'test', machine: 'test machine' });
  const rows = parseCsv(readFileSync(csv, 'utf8'));
  t.same(rows[0], [...CSV_COLUMNS]);
  t.equal(rows.length, 1 + report.windows.length + 1, 'a row per window and the overall');
  t.equal(rows.at(-1)![0], 'overall');
  t.equal(Number(rows.at(-1)![CSV_COLUMNS.indexOf('sent')]), o.sent);
  t.equal(readFileSync(csv, 'utf8'), toCsv(report));
  const doc = JSON.parse(readFileSync(json, 'utf8')) as { method: { options: { seed: number }; machine: string }; windows: unknown[]; overall: { answered: number } };
  t.equal(doc.method.options.seed, 3);
  t.equal(doc.method.machine, 'test machine');
  t.equal(doc.windows.length, report.windows.length);
  t.equal(doc.overall.answered, o.answered);

  t.test('the command line runs it and writes both files', async (t) => {
    const r = await infaas(['bench', '-s', sys.url, '--concurrency', '2', '--duration', '1', '--warmup', '0', '--latency', '1000',
      '--csv', join(dir, 'c.csv'), '--json', join(dir, 'c.json')]);
    t.equal(r.code, 0, r.stderr);
    t.comment(`\n${r.stdout}`);
    t.match(r.stdout, /^overall\s/m, 'a summary table with the overall row');
    t.match(r.stderr, /\[0-1 s\] sent \d+/, 'a progress line per window');
    t.equal(parseCsv(readFileSync(join(dir, 'c.csv'), 'utf8')).at(-1)![0], 'overall');
    const cdoc = JSON.parse(readFileSync(join(dir, 'c.json'), 'utf8')) as { method: { command: string; options: { load: unknown } }; overall: { answered: number } };
    t.same(cdoc.method.options.load, { kind: 'closed', concurrency: 2 });
    t.match(cdoc.method.command, /^infaas bench /);
    t.ok(cdoc.overall.answered > 0, 'the command got answers');
  });
});
