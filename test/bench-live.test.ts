// `infaas bench` against a real system (nats-server, registrar, profiler, dispatcher, worker, ONNX
// Runtime): every query gets one outcome, answers are checked against labels, outputs parse; a load
// shape with a two-class mix, and the provisioned cost of the worker from the workers bucket.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';
import { loadSplit } from '../zoo/data.js';
import { ZOO_TASK } from '../zoo/index.js';
import { kvFleet, profileAccuracy, runBench } from '../bench/live/run.js';
import { namedShape, traceArrivals, type QueryClass } from '../bench/trace.js';
import { CSV_COLUMNS, summaryTable, toCsv, writeOutputs } from '../bench/live/report.js';
import { startTestSystem, startTestWorker, untilServing } from './helpers/system.js';
import { registerZooModel, VALIDATION_SAMPLES } from './helpers/zoo.js';
import { runInfaas } from './helpers/cli.js';

const infaas = runInfaas;

const parseCsv = (text: string) => text.trim().split('\n').map((l) => l.split(','));

t.test('a short open-loop bench against a live system', async (t) => {
  const sys = await startTestSystem(t);
  const info = await registerZooModel(sys.client, 'mlp-small');
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'c1' });
  t.teardown(() => dispatcher.stop());
  const pricePerHour = 0.5;
  await startTestWorker(t, sys, { threads: 2, pricePerHour });
  const dir = mkdtempSync(join(tmpdir(), 'infaas-bench-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  // Serving is ready once one query is answered (the dispatcher learns of the worker from KV).
  await untilServing(sys.nc, 2000);

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

  const mix: QueryClass[] = [
    { name: 'any', weight: 1, target: { task: ZOO_TASK }, latencyMs: 1000 },
    { name: 'mlp', weight: 1, target: { model: 'mlp-small' }, latencyMs: 2000 },
  ];

  t.test('a load shape with a two-class mix, and the provisioned cost of the worker', async (t) => {
    const trace = namedShape('fluctuating', 3, 1, 5);
    const r = await runBench({ nc: sys.nc, fleet: kvFleet(sys.stores), digits }, {
      load: { kind: 'trace', trace }, mix, durationS: 2.5, warmupS: 0.5, windowS: 1, seed: 5, retry: true,
    });
    t.equal(r.sent, traceArrivals(trace, 5).length, "the trace's arrivals, all sent");
    t.same(r.outcomes.map((o) => o.seq), Array.from({ length: r.sent }, (_, i) => i), 'every query sent has exactly one outcome');
    t.ok(r.outcomes.every((o) => o.objectiveMs === mix.find((c) => c.name === o.cls)?.latencyMs), "each outcome carries its class's objective");
    const o = r.overall;
    t.ok(o.errors <= o.sent * 0.1, `errors ${JSON.stringify(o.errorsByCode)} at most 10 %`);
    t.same(Object.keys(r.classes!), ['any', 'mlp']);
    t.equal(r.classes!.any.sent + r.classes!.mlp.sent, o.sent, 'the classes split the overall');
    t.ok(r.classes!.any.sent > 0 && r.classes!.mlp.sent > 0, `both classes drawn (${r.classes!.any.sent} and ${r.classes!.mlp.sent})`);
    t.ok(Object.keys(r.classes!.mlp.variants).every((v) => v.startsWith('mlp-small.')), 'the model class answered by its model');
    t.ok(r.windows.every((w) => w.targetQps !== null && w.targetQps! > 0), 'every window has the trace\'s target rate');
    // A reading every window (1 s); a slow read skips ticks, so only "at least one" is certain.
    t.ok(r.fleet.length >= 1 && r.fleet.every((s) => s.workers?.length === 1), `${r.fleet.length} fleet readings, each seeing the one worker`);
    t.equal(o.workers, 1);
    t.ok(Math.abs(o.workerSeconds! - 2.5) < 1e-6, `worker-seconds ${o.workerSeconds}: the worker was up for the whole measurement`);
    t.ok(Math.abs(o.provisionedCost! - (pricePerHour * 2.5) / 3600) < 1e-12, `provisioned cost ${o.provisionedCost}`);
    t.ok(Math.abs(o.provisionedCostPerGood! - o.provisionedCost! / o.good) < 1e-15, 'per good answer');
    t.equal(r.windows.reduce((a, w) => a + w.provisionedCost!, 0).toFixed(12), (pricePerHour * 3 / 3600).toFixed(12), 'windows (warmup included) add up to the run');
  });

  t.test('a fleet that cannot be read gives no provisioned cost, not a guess', async (t) => {
    const r = await runBench({ nc: sys.nc, fleet: () => Promise.reject(new Error('permissions violation')), digits }, {
      load: { kind: 'closed', concurrency: 1 }, target: { task: ZOO_TASK }, latencyMs: 1000, durationS: 0.3, warmupS: 0, windowS: 0.3, seed: 1, retry: true,
    });
    t.ok(r.fleet.length > 0 && r.fleet.every((s) => s.workers === null), 'sampled, unreadable');
    t.same([r.overall.workers, r.overall.provisionedCost, r.overall.provisionedCostPerGood], [null, null, null]);
    t.ok(r.overall.answered > 0 && r.overall.cost > 0, "the answers' own cost is still there");
    t.match(summaryTable(r), /^provisioned cost: n\/a \(the workers bucket could not be read\)$/m);
    t.equal(toCsv(r).split('\n')[2].split(',')[CSV_COLUMNS.indexOf('provisioned_cost')], '', 'an empty CSV cell');
  });

  t.test('the command line runs a shape with a mix and writes the new fields', async (t) => {
    writeFileSync(join(dir, 'mix.json'), JSON.stringify(mix.map((c) => ({ name: c.name, weight: c.weight, ...c.target, latencyMs: c.latencyMs }))));
    const r = await infaas(['bench', '-s', sys.url, '--shape', 'flat', '--rate-scale', '10', '--duration', '1', '--warmup', '0',
      '--mix', join(dir, 'mix.json'), '--csv', join(dir, 'm.csv'), '--json', join(dir, 'm.json')]);
    t.equal(r.code, 0, r.stderr);
    t.comment(`\n${r.stdout}`);
    t.match(r.stdout, /^load: flat at 40 q\/s for 1 s/m);
    t.match(r.stdout, /^provisioned cost: \$[\d.e-]+ for 1 worker-seconds \(workers seen: 1\), \$[\d.e-]+ per good answer$/m);
    t.match(r.stdout, /^class\s+objective ms/m, 'a table of the classes');
    const rows = parseCsv(readFileSync(join(dir, 'm.csv'), 'utf8'));
    t.same(rows.slice(-2).map((row) => [row[0], row[1]]), [['overall', 'any'], ['overall', 'mlp']], 'an overall row per class');
    const doc = JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8')) as { windows: { targetQps: number; workers: number; provisionedCost: number }[]; classes: Record<string, unknown> };
    t.same(doc.windows.map((w) => [w.targetQps, w.workers]), [[40, 1]]);
    t.ok(doc.windows[0].provisionedCost > 0);
    t.same(Object.keys(doc.classes), ['any', 'mlp']);
  });

  t.test('the command line refuses a rate with a shape, before connecting', async (t) => {
    const r = await infaas(['bench', '-s', sys.url, '--rate', '5', '--shape', 'flat']);
    t.equal(r.code, 1);
    t.match(r.stderr, /--rate and --shape: one load at a time/);
  });
});
