// Charts from `infaas bench --json` reports, one policy per report:
//   npx tsx bench/charts-cli.ts --out DIR [--title T] [--policy name=path ...] [--no-png] [report.json ...]
// A report given as a plain path is named after its file (bench-infaas.json -> bench-infaas).
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { fromBenchWindows, renderCharts, type BenchWindow, type ChartSeries } from './charts.js';

const USAGE = 'usage: charts-cli --out DIR [--title T] [--policy name=path ...] [--no-png] [report.json ...]';

/** The parts of bench/live/report.ts toJson's document that a chart needs. */
interface BenchJson { method?: { options?: { latencyMs?: number } }; windows: BenchWindow[] }

function readReport(policy: string, path: string): ChartSeries {
  let doc: Partial<BenchJson>;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8')) as Partial<BenchJson>;
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc.windows) || doc.windows.some((w) => typeof w?.fromS !== 'number' || typeof w?.offeredQps !== 'number')) {
    throw new Error(`${path}: not an infaas bench --json report (no windows with fromS and offeredQps)`);
  }
  return fromBenchWindows(policy, doc.windows, doc.method?.options?.latencyMs);
}

function inputs(policies: readonly string[], paths: readonly string[]): [string, string][] {
  const named = policies.map((arg): [string, string] => {
    const at = arg.indexOf('=');
    if (at <= 0 || at === arg.length - 1) throw new Error(`--policy ${arg}: expected name=path`);
    return [arg.slice(0, at), arg.slice(at + 1)];
  });
  const plain = paths.filter((p) => !named.some(([, q]) => q === p)).map((p): [string, string] => [basename(p, extname(p)), p]);
  return [...named, ...plain];
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' }, title: { type: 'string', default: 'infaas bench' },
      policy: { type: 'string', multiple: true, default: [] }, 'no-png': { type: 'boolean', default: false },
    },
  });
  const files = inputs(values.policy ?? [], positionals);
  if (!values.out || files.length === 0) throw new Error(USAGE);
  const series = files.map(([policy, path]) => readReport(policy, path));
  const result = await renderCharts(series, values.title ?? 'infaas bench', values.out, { png: !values['no-png'] });
  process.stdout.write(`${result.files.length} files in ${values.out}${result.png ? ' (SVG and PNG)' : ' (SVG only)'}\n`);
  if (result.note) process.stderr.write(`${result.note}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exitCode = 1;
});
