// Soak: minutes of steady load through `infaas controller` and `infaas worker` processes while
// instances are loaded and unloaded every few seconds; samples each process's resident memory and
// open file descriptors (/proc) to show that sessions and handles are released on unload.
// Usage: npm run bench:soak [-- --minutes 10] [--rate 300] [--write]   (--write: docs/reliability.md)
import { readFileSync, readdirSync } from 'node:fs';
import { decodeJson, encodeJson } from '../runtime/bus/codec.js';
import { formatTable } from '../runtime/table.js';
import type { Query } from '../schemas/query.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { subjects } from '../subjects/index.js';
import { OpenLoad, fmtTally, sleep, startActor, type ActorProcess } from './fault-kit.js';
import { HARDWARE_CLASS, MODEL, SLOW_MODEL, startBed } from './faults.js';
import { machineLine, writeSection } from './machine.js';
import { ZOO_TASK } from '../zoo/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, def: number): number => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : def);
const MINUTES = arg('--minutes', 10);
const RATE = arg('--rate', 300);
const CHURN_S = arg('--churn-every', 5);

interface Sample { at: number; proc: string; rssMb: number; fds: number; threads: number }

function sample(p: ActorProcess, label: string): Sample | undefined {
  const pid = p.child.pid;
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { at: Date.now(), proc: label, rssMb: kb('VmRSS') / 1024, fds: readdirSync(`/proc/${pid}/fd`).length, threads: kb('Threads') };
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const bed = await startBed();
  const lines: string[] = [];
  const out = (s: string): void => { process.stdout.write(s + '\n'); lines.push(s); };
  try {
    const controller = await startActor('controller', bed.nats.url, { dataDir: bed.dataDir });
    const worker = await startActor('worker', bed.nats.url, { dataDir: bed.dataDir, id: 'soak1', hardwareClass: HARDWARE_CLASS });
    bed.procs.push(controller, worker);
    out(`Method: ${MINUTES} min of open-loop load at ${RATE} q/s (a third each: model-less task queries, ${MODEL}, ${SLOW_MODEL}; 200 ms`);
    out(`objective; no client retries) through one \`infaas controller\` and one \`infaas worker\` process (1 thread); every ${CHURN_S} s the`);
    out('soak loads a variant that is not running (noWait) and unloads a running instance, so sessions come and go all along.');
    out('RSS, open file descriptors and threads of each process from /proc, sampled every 10 s.');
    out(machineLine());
    const image = arrayToTensor('float32', [1, 1, 28, 28], new Float32Array(784).fill(0.25));
    let n = 0;
    const make = (): Query => {
      const k = n++ % 3;
      return k === 0 ? { task: ZOO_TASK, inputs: { image }, slo: { latencyMs: 200, minAccuracy: 0.9 } }
        : { model: k === 1 ? MODEL : SLOW_MODEL, inputs: { image }, slo: { latencyMs: 200 } };
    };
    const variants = [bed.variants.batch1, bed.variants.batched, bed.variants.slowBatch1];
    const load = new OpenLoad(bed.nc, make, RATE);
    const samples: Sample[] = [];
    const take = () => { for (const [p, l] of [[controller, 'controller'], [worker, 'worker']] as const) { const s = sample(p, l); if (s) samples.push(s); } };
    take();
    const t0 = Date.now();
    const end = t0 + MINUTES * 60_000;
    let churns = 0;
    let churnErrors = 0;
    let nextSample = t0 + 10_000;
    let nextReport = t0 + 60_000;
    while (Date.now() < end) {
      await sleep(CHURN_S * 1000);
      try {
        const list = decodeJson((await bed.nc.request(subjects.worker.instances('soak1'), encodeJson({}), { timeout: 5000 })).data) as { instances: { id: string; variant: string; state: string }[] };
        const running = list.instances.filter((i) => i.state !== 'loading');
        const absent = variants.filter((v) => !list.instances.some((i) => i.variant === v));
        if (absent.length) await bed.nc.request(subjects.worker.load('soak1'), encodeJson({ variant: absent[churns % absent.length], noWait: true }), { timeout: 5000 });
        if (running.length > 1) await bed.nc.request(subjects.worker.unload('soak1'), encodeJson({ instance: running[churns % running.length].id }), { timeout: 10_000 });
        churns++;
      } catch {
        churnErrors++;
      }
      if (Date.now() >= nextSample) { take(); nextSample += 10_000; }
      if (Date.now() >= nextReport) {
        const w = samples.filter((s) => s.proc === 'worker').at(-1);
        process.stdout.write(`  ${Math.round((Date.now() - t0) / 60_000)} min: ${fmtTally(load.tally(nextReport - 60_000, nextReport))}; worker RSS ${w?.rssMb.toFixed(0)} MB, ${w?.fds} fds\n`);
        nextReport += 60_000;
      }
    }
    await load.stop();
    take();
    out('');
    out(`load: ${fmtTally(load.tally())}`);
    out(`churn: ${churns} load+unload rounds (${churnErrors} failed)`);
    const headers = ['process', 'RSS at 1 min (MB)', 'RSS max (MB)', 'RSS at end (MB)', 'fds at 1 min', 'fds min-max', 'threads min-max'];
    const rows: string[][] = [];
    for (const proc of ['controller', 'worker']) {
      const s = samples.filter((x) => x.proc === proc);
      const first = s.find((x) => x.at >= t0 + 60_000) ?? s[0];
      const last = s.at(-1)!;
      rows.push([proc, first.rssMb.toFixed(0), Math.max(...s.map((x) => x.rssMb)).toFixed(0), last.rssMb.toFixed(0), String(first.fds),
        `${Math.min(...s.map((x) => x.fds))}-${Math.max(...s.map((x) => x.fds))}`, `${Math.min(...s.map((x) => x.threads))}-${Math.max(...s.map((x) => x.threads))}`]);
    }
    out(formatTable(headers, rows));
    if (argv.includes('--write')) writeSection('docs/reliability.md', 'soak', `\`\`\`\n${lines.join('\n')}\n\`\`\``);
  } finally {
    await bed.dispose();
  }
}

await main();
