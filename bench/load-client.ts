// The load generator of bench/saturation.ts, run as its own process (fork): closed loops of N
// outstanding requests and open-loop rate schedules against one NATS subject, and in-process ONNX
// Runtime for the baseline. Every request's outcome is counted: an answer within the objective
// (goodput), a late answer, or an error by code (TIMEOUT when nothing came back).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { connect, type MsgHdrs, type NatsConnection } from 'nats';
import { pack, unpack } from 'msgpackr';
import ort from 'onnxruntime-node';
import { loadSplit } from '../zoo/data.js';

export interface Target { subject: string; body: Record<string, unknown> }
export interface Window { sent: number; good: number; late: number; errors: Record<string, number> }
export interface RunResult {
  seconds: number;
  /** Over the measured part: totals, latency percentiles of answers (ms), and one window per second of the whole run. */
  sent: number; good: number; late: number; errors: Record<string, number>; p50: number; p99: number;
  windows: Window[];
}
export type ClientCommand =
  | { type: 'closed'; target: Target; concurrency: number; warmupS: number; measureS: number; objectiveMs: number }
  | { type: 'open'; target: Target; schedule: { rate: number; seconds: number }[]; measureFromS: number; objectiveMs: number }
  | { type: 'ort'; file: string; batch: number; seconds: number; sequential: boolean };

const IMAGES = 64;
const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN);

function bodies(target: Target, images: Float32Array): Uint8Array[] {
  return Array.from({ length: IMAGES }, (_, i) => pack({
    ...target.body,
    inputs: { image: { dtype: 'float32', shape: [1, 1, 28, 28], data: new Uint8Array(images.buffer.slice(i * 784 * 4, (i + 1) * 784 * 4)) } },
  }));
}

function errorCode(h: MsgHdrs | undefined, data: Uint8Array): string | undefined {
  if (!h?.get('Nats-Service-Error-Code')) return undefined;
  try { return (unpack(data) as { error?: { code?: string } }).error?.code ?? 'UNKNOWN'; } catch { return 'UNDECODABLE'; }
}

class Recorder {
  readonly windows: Window[] = [];
  readonly latencies: number[] = [];
  constructor(private readonly t0: number, private readonly measureFrom: number, private readonly objectiveMs: number) {}
  private window(at: number): Window {
    const i = Math.max(0, Math.floor((at - this.t0) / 1000));
    while (this.windows.length <= i) this.windows.push({ sent: 0, good: 0, late: 0, errors: {} });
    return this.windows[i];
  }
  sent(at: number): void { this.window(at).sent++; }
  /** Counted in the window the request was sent in, so a window's share of errors is per query. */
  outcome(sentAt: number, ms: number, code?: string): void {
    const w = this.window(sentAt);
    if (code) w.errors[code] = (w.errors[code] ?? 0) + 1;
    else if (ms <= this.objectiveMs) w.good++;
    else w.late++;
    if (!code && sentAt - this.t0 >= this.measureFrom * 1000) this.latencies.push(ms);
  }
  result(seconds: number): RunResult {
    const measured = this.windows.slice(this.measureFrom);
    const errors: Record<string, number> = {};
    for (const w of measured) for (const [k, v] of Object.entries(w.errors)) errors[k] = (errors[k] ?? 0) + v;
    const sorted = this.latencies.sort((a, b) => a - b);
    return {
      seconds, sent: sum(measured, 'sent'), good: sum(measured, 'good'), late: sum(measured, 'late'), errors,
      p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), windows: this.windows,
    };
  }
}

const sum = (ws: Window[], k: 'sent' | 'good' | 'late') => ws.reduce((a, w) => a + w[k], 0);

async function request(nc: NatsConnection, subject: string, data: Uint8Array, rec: Recorder, timeout: number): Promise<void> {
  const sentAt = performance.now();
  rec.sent(sentAt);
  try {
    const m = await nc.request(subject, data, { timeout });
    rec.outcome(sentAt, performance.now() - sentAt, errorCode(m.headers, m.data));
  } catch (err) {
    const code = (err as { code?: string }).code;
    rec.outcome(sentAt, performance.now() - sentAt, code === 'TIMEOUT' ? 'TIMEOUT' : code === '503' ? 'NO_RESPONDERS' : 'CLIENT_ERROR');
  }
}

async function closed(nc: NatsConnection, c: Extract<ClientCommand, { type: 'closed' }>, images: Float32Array): Promise<RunResult> {
  const data = bodies(c.target, images);
  const seconds = c.warmupS + c.measureS;
  const t0 = performance.now();
  const rec = new Recorder(t0, c.warmupS, c.objectiveMs);
  const end = t0 + seconds * 1000;
  let n = 0;
  const loop = async () => { while (performance.now() < end) await request(nc, c.target.subject, data[n++ % IMAGES], rec, c.objectiveMs + 2000); };
  await Promise.all(Array.from({ length: c.concurrency }, loop));
  rec.windows.length = Math.min(rec.windows.length, seconds);
  return rec.result(seconds);
}

async function open(nc: NatsConnection, c: Extract<ClientCommand, { type: 'open' }>, images: Float32Array): Promise<RunResult> {
  const data = bodies(c.target, images);
  const t0 = performance.now();
  const rec = new Recorder(t0, c.measureFromS, c.objectiveMs);
  const pending = new Set<Promise<void>>();
  let owed = 0, last = t0, n = 0;
  for (const step of c.schedule) {
    const stepEnd = performance.now() + step.seconds * 1000;
    while (performance.now() < stepEnd) {
      await new Promise((r) => setTimeout(r, 1));
      const now = performance.now();
      owed += (step.rate * (now - last)) / 1000;
      last = now;
      for (; owed >= 1; owed--) {
        const p: Promise<void> = request(nc, c.target.subject, data[n++ % IMAGES], rec, c.objectiveMs + 2000).finally(() => pending.delete(p));
        pending.add(p);
      }
    }
  }
  await Promise.all([...pending]);
  const seconds = c.schedule.reduce((a, s) => a + s.seconds, 0);
  rec.windows.length = Math.min(rec.windows.length, seconds);
  return rec.result(seconds);
}

/** ONNX Runtime in this process, same session options as the responder: batch-1 latency one call at a time, or images/s at a batch. */
async function direct(c: Extract<ClientCommand, { type: 'ort' }>, images: Float32Array): Promise<RunResult> {
  const session = await ort.InferenceSession.create(readFileSync(c.file), { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  const feeds = Array.from({ length: 8 }, (_, i) => {
    const px = new Float32Array(c.batch * 784);
    for (let r = 0; r < c.batch; r++) px.set(images.subarray(((i * c.batch + r) % IMAGES) * 784, ((i * c.batch + r) % IMAGES + 1) * 784), r * 784);
    return { image: new ort.Tensor('float32', px, [c.batch, 1, 28, 28]) };
  });
  for (let i = 0; i < 50; i++) await session.run(feeds[i % 8]);
  const t0 = performance.now();
  const rec = new Recorder(t0, 0, Infinity);
  let i = 0;
  while (performance.now() - t0 < c.seconds * 1000) {
    const s = performance.now();
    await session.run(feeds[i++ % 8]);
    for (let r = 0; r < c.batch; r++) { rec.sent(s); rec.outcome(s, performance.now() - s); }
    if (c.sequential) await new Promise((r) => setImmediate(r));
  }
  await session.release();
  return rec.result(c.seconds);
}

export async function runClient(url: string): Promise<void> {
  const nc = await connect({ servers: url, name: 'bench-client' });
  const images = loadSplit('validation', IMAGES).images;
  process.on('message', (cmd: ClientCommand | { type: 'exit' }) => {
    if (cmd.type === 'exit') { void nc.close().then(() => process.exit(0)); return; }
    const run = cmd.type === 'closed' ? closed(nc, cmd, images) : cmd.type === 'open' ? open(nc, cmd, images) : direct(cmd, images);
    void run.then((result) => process.send!({ type: 'result', result }), (err) => process.send!({ type: 'failed', message: String(err) }));
  });
  process.send!({ type: 'ready' });
}

export async function runEcho(url: string, subject: string): Promise<void> {
  const nc = await connect({ servers: url, name: 'bench-echo' });
  const reply = pack({ outputs: {} });
  nc.subscribe(subject, { callback: (_e, m) => m.respond(reply) });
  process.send!('ready');
}
