// The client of bench/real-models.ts, in its own process: one query at a time, each pinned to a
// variant, round robin over the cases so every case sees the same machine conditions. Records the
// client's end-to-end time and the worker's inference time (queueing and the run) per case.
import { connectBus, closeBus } from '../runtime/bus/nats.js';
import { resolveAccess } from '../runtime/bus/auth.js';
import { silentLogger } from '../runtime/log.js';
import { QueryClient } from '../runtime/client/query-client.js';
import { arrayToTensor } from '../runtime/bus/codec.js';
import { InfaasError } from '../schemas/errors.js';
import { syntheticTextImage } from '../zoo/ocr.js';

export interface ClientCase { variant: string; h: number; w: number }
export interface ClientResult { cases: (ClientCase & { clientP50: number; clientP99: number; workerP50: number; errors: number })[] }

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] : NaN);

process.once('message', async (m: { url: string; cases: ClientCase[]; runs: number; credentials: string }) => {
  // The client role's credentials from the system's data directory, as `infaas bench` presents them.
  const nc = await connectBus({ servers: m.url, name: 'bench-real-models-client', log: silentLogger, extra: resolveAccess({ credentials: m.credentials }, 'client').options });
  const qc = new QueryClient(nc);
  const images = new Map(m.cases.map((c) => [`${c.h}x${c.w}`, arrayToTensor('float32', [1, 3, c.h, c.w], syntheticTextImage(c.h, c.w, 7))]));
  const client = m.cases.map(() => [] as number[]);
  const worker = m.cases.map(() => [] as number[]);
  const errors = m.cases.map(() => 0);
  const send = (c: ClientCase) => qc.query({ variant: c.variant, inputs: { x: images.get(`${c.h}x${c.w}`)! }, slo: { latencyMs: 10_000 } }, { retryUntil: Date.now() + 60_000 });
  // Warm-up: the first query of a variant loads it on the worker.
  for (const c of m.cases) await send(c).catch(() => undefined);
  for (let r = 0; r < m.runs; r++) {
    for (const [i, c] of m.cases.entries()) {
      const t0 = performance.now();
      try {
        const res = await send(c);
        client[i].push(performance.now() - t0);
        worker[i].push(res.timings.queueMs + res.timings.inferenceMs);
      } catch (err) {
        errors[i]++;
        if (!(err instanceof InfaasError)) throw err;
      }
    }
  }
  await closeBus(nc);
  const result: ClientResult = { cases: m.cases.map((c, i) => ({ ...c, clientP50: pct(client[i], 0.5), clientP99: pct(client[i], 0.99), workerP50: pct(worker[i], 0.5), errors: errors[i] })) };
  process.send!(result, () => process.exit(0));
});
