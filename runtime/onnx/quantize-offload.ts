// Runs the int8 quantisers in a worker thread: a large model takes seconds of CPU (and static
// quantisation runs ONNX Runtime over calibration samples), which on the event loop of a serving
// worker would stall its NATS traffic (and get it cut off as a slow consumer).
import { Worker } from 'node:worker_threads';
import type { OptLevel } from '../../schemas/registry.js';
import type { QuantizeReport } from './quantize.js';
import type { CalibrationFeed, StaticQuantizeReport } from './quantize-static.js';
import { compiled } from '../project-files.js';

/** Dynamic int8, or static int8 (QDQ) calibrated on `calibration`; the result is loaded in ORT at `checkLevels`. */
export type QuantizeJob =
  | { kind: 'int8'; checkLevels?: OptLevel[] }
  | { kind: 'int8-static'; calibration: CalibrationFeed[]; checkLevels?: OptLevel[] };

export interface QuantizeOutcome {
  /** The quantised model; absent when no node could be quantised (see report.skippedNodes). */
  bytes?: Uint8Array;
  report: QuantizeReport | StaticQuantizeReport;
  /** ONNX Runtime's error when the quantised graph fails to load (or, static, to run a calibration sample). */
  loadError?: string;
}

// Compiled (dist/): the thread runs the quantiser's JavaScript; from the sources, a bootstrap loads it through tsx.
const THREAD = compiled ? new URL('./quantize-thread-impl.js', import.meta.url) : new URL('./quantize-thread.mjs', import.meta.url);

/** Rejects with the quantiser's reason when it refuses the model (an opset it cannot upgrade, say). */
export async function quantizeInThread(bytes: Uint8Array, job: QuantizeJob = { kind: 'int8' }): Promise<QuantizeOutcome> {
  const worker = new Worker(THREAD);
  try {
    return await new Promise((resolve, reject) => {
      worker.once('message', (m: Partial<QuantizeOutcome> & { error?: string }) => {
        if (m.error !== undefined || !m.report) reject(new Error(m.error ?? 'no report'));
        else resolve({ ...(m.bytes ? { bytes: m.bytes } : {}), report: m.report, ...(m.loadError ? { loadError: m.loadError } : {}) });
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`quantiser thread exited with code ${code}`)));
      // A copy: the caller keeps its bytes (a Node Buffer's slice() would be a view).
      const copy = new Uint8Array(bytes.byteLength);
      copy.set(bytes);
      worker.postMessage({ bytes: copy, job }, [copy.buffer]);
    });
  } finally {
    await worker.terminate();
  }
}
