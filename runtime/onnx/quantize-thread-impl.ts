// Quantises one model in a worker thread: decode, rewrite to int8 (dynamic, or static with an ORT
// calibration run), encode, then load the result in ONNX Runtime at the levels it will be served
// at, so that a graph ORT refuses is reported instead of becoming variants that fail to load.
import { parentPort } from 'node:worker_threads';
import { decodeModel, encodeModel } from './onnx-graph.js';
import { ort } from './onnx-session.js';
import { quantizeDynamicInt8 } from './quantize.js';
import { quantizeStaticInt8, type CalibrationFeed } from './quantize-static.js';
import type { QuantizeJob } from './quantize-offload.js';

async function loadError(bytes: Uint8Array, job: QuantizeJob): Promise<string | undefined> {
  const sample: CalibrationFeed | undefined = job.kind === 'int8-static' ? job.calibration[0] : undefined;
  for (const level of job.checkLevels ?? ['all']) {
    let session: ort.InferenceSession | undefined;
    try {
      session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1 });
      if (sample) await session.run(Object.fromEntries(Object.entries(sample).map(([k, v]) => [k, new ort.Tensor(v.dtype as 'float32', v.data as Float32Array, v.dims)])));
    } catch (err) {
      return `at optimisation level ${level}: ${(err as Error).message}`;
    } finally {
      await session?.release();
    }
  }
  return undefined;
}

parentPort!.once('message', async ({ bytes, job }: { bytes: Uint8Array; job: QuantizeJob }) => {
  try {
    const { model, report } = job.kind === 'int8-static'
      ? await quantizeStaticInt8(decodeModel(bytes), job.calibration)
      : quantizeDynamicInt8(decodeModel(bytes));
    // An own ArrayBuffer to transfer: protobufjs may hand back a view into Node's shared buffer pool.
    const out = report.quantizedNodes > 0 ? new Uint8Array(encodeModel(model)) : undefined;
    const failed = out ? await loadError(out, job) : undefined;
    parentPort!.postMessage({ bytes: out, report, ...(failed ? { loadError: failed } : {}) }, out ? [out.buffer as ArrayBuffer] : []);
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
});
