// The demonstration workload of `infaas up`: the same held-out digits sent with different
// objectives, showing how model-less selection changes with the SLO and what it achieved.
import type { Slo } from '../schemas/query.js';
import { arrayToTensor, tensorToArray } from '../runtime/bus/codec.js';
import { InfaasError } from '../schemas/errors.js';
import type { QueryClient } from '../runtime/client/query-client.js';
import { fmtMs, formatTable } from '../runtime/table.js';
import { loadSplit } from '../zoo/data.js';
import { ZOO_TASK } from '../zoo/index.js';

export interface DemoScenario { name: string; slo: Slo }

/**
 * Floors come from the measured accuracies (they differ with the validation set, e.g. `--quick`):
 * "modest" is met by every registered model, "high" only by the most accurate one. 2.5 ms is tight:
 * the serving path takes ~2 ms of it, leaving 0.5 ms for inference (cnn-wide needs ~0.7).
 */
export function demoScenarios(accuracies: number[]): DemoScenario[] {
  const modest = Math.floor(Math.min(...accuracies) * 1000) / 1000;
  const high = Math.floor(Math.max(...accuracies) * 1000) / 1000;
  return [
    { name: 'loose objective, modest accuracy', slo: { latencyMs: 50, minAccuracy: modest } },
    { name: 'tight objective', slo: { latencyMs: 2.5, minAccuracy: modest } },
    { name: 'high accuracy floor', slo: { latencyMs: 50, minAccuracy: high } },
    { name: 'tight objective and high accuracy', slo: { latencyMs: 2.5, minAccuracy: high } },
  ];
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

/**
 * Runs each scenario with `queries` digits; a variant that is still loading is waited for (at most `patienceMs`).
 * A query answered late or refused for lack of room (DEADLINE_EXCEEDED, NO_CAPACITY) is counted as a miss
 * and the scenario carries on: on a busy machine one slow answer says little about the selection.
 */
export async function runDemo(qc: QueryClient, accuracies: number[], options: { queries?: number; patienceMs?: number } = {}): Promise<string> {
  const queries = options.queries ?? 20;
  const { images, labels } = loadSplit('validation', 400);
  const rows: (string | number)[][] = [];
  for (const [k, s] of demoScenarios(accuracies).entries()) {
    const ms: number[] = [];
    const chosen = new Map<string, number>();
    let correct = 0;
    let cost = 0;
    const missed = new Map<string, number>();
    let refusal: InfaasError | undefined;
    const deadline = Date.now() + (options.patienceMs ?? 20_000);
    for (let n = 0; n < queries && !refusal;) {
      const i = (k * queries + n * 7) % labels.length;
      const image = arrayToTensor('float32', [1, 1, 28, 28], images.slice(i * 784, (i + 1) * 784));
      const t0 = performance.now();
      try {
        const a = await qc.query({ task: ZOO_TASK, inputs: { image }, slo: s.slo });
        ms.push(performance.now() - t0);
        const v = `${a.variant}`;
        chosen.set(v, (chosen.get(v) ?? 0) + 1);
        const logits = Array.from(tensorToArray(a.outputs.logits) as Float32Array);
        if (logits.indexOf(Math.max(...logits)) === labels[i]) correct++;
        cost += a.cost;
        n++;
      } catch (err) {
        const e = err instanceof InfaasError ? err : new InfaasError('INTERNAL', String(err));
        // A variant that fits but was not running is being loaded for us: wait and retry.
        if (e.code === 'INSTANCE_LOADING' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, Math.min(2000, (e.retryAfterMs ?? 200) + 50)));
          continue;
        }
        if (e.code === 'DEADLINE_EXCEEDED' || e.code === 'NO_CAPACITY') {
          missed.set(e.code, (missed.get(e.code) ?? 0) + 1);
          n++;
          continue;
        }
        refusal = e;
      }
    }
    const objective = `< ${s.slo.latencyMs} ms, >= ${((s.slo.minAccuracy ?? 0) * 100).toFixed(1)}%`;
    if (refusal) {
      const reason = String(refusal.details?.reason ?? refusal.message.split(' (')[0]);
      const achievable = refusal.message.includes('Achievable: ') ? `; achievable: ${refusal.message.split('Achievable: ')[1]}` : '';
      rows.push([s.name, objective, refusal.code, '-', '-', '-', `${reason}${achievable}`.slice(0, 220)]);
      continue;
    }
    const misses = [...missed.values()].reduce((a, b) => a + b, 0);
    const missNote = misses > 0 ? `${misses} of ${queries} missed (${[...missed].map(([c, m]) => `${c} ${m}`).join(', ')})` : '';
    if (ms.length === 0) {
      rows.push([s.name, objective, 'no answers', '-', '-', '-', missNote]);
      continue;
    }
    const [variant] = [...chosen.entries()].sort((a, b) => b[1] - a[1])[0];
    const also = chosen.size > 1 ? `also ${[...chosen.keys()].filter((v) => v !== variant).join(', ')}` : '';
    rows.push([s.name, objective, variant, `${fmtMs(pct(ms, 0.5))}/${fmtMs(pct(ms, 0.99))}`, `${correct}/${ms.length}`, `$${(cost / ms.length).toExponential(2)}`,
      [also, missNote].filter(Boolean).join('; ')]);
  }
  return formatTable(['scenario', 'objective', 'chosen variant', 'p50/p99 ms', 'correct', 'cost/query', 'note'], rows);
}
