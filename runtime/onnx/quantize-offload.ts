// Runs the int8 quantiser in a worker thread: a large model takes seconds of CPU, which on the
// event loop of a serving worker would stall its NATS traffic (and get it cut off as a slow consumer).
import { Worker } from 'node:worker_threads';
import type { QuantizeReport } from './quantize.js';

export async function quantizeInThread(bytes: Uint8Array): Promise<{ bytes?: Uint8Array; report: QuantizeReport }> {
  const worker = new Worker(new URL('./quantize-thread.mjs', import.meta.url));
  try {
    return await new Promise((resolve, reject) => {
      worker.once('message', (m: { bytes?: Uint8Array; report?: QuantizeReport; error?: string }) => {
        if (m.error !== undefined || !m.report) reject(new Error(m.error ?? 'no report'));
        else resolve({ ...(m.bytes ? { bytes: m.bytes } : {}), report: m.report });
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`quantiser thread exited with code ${code}`)));
      // A copy: the caller keeps its bytes (a Node Buffer's slice() would be a view).
      const copy = new Uint8Array(bytes.byteLength);
      copy.set(bytes);
      worker.postMessage(copy, [copy.buffer]);
    });
  } finally {
    await worker.terminate();
  }
}
