// Quantises one model in a worker thread: decode, rewrite to dynamic int8, encode (CPU-bound:
// about 65 ms per MB of weights on the dev VM), so the worker's event loop keeps serving.
import { parentPort } from 'node:worker_threads';
import { decodeModel, encodeModel } from './onnx-graph.js';
import { quantizeDynamicInt8 } from './quantize.js';

parentPort!.once('message', (bytes: Uint8Array) => {
  try {
    const { model, report } = quantizeDynamicInt8(decodeModel(bytes));
    const out = report.quantizedNodes > 0 ? encodeModel(model) : undefined;
    parentPort!.postMessage({ bytes: out, report }, out ? [out.buffer as ArrayBuffer] : []);
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
});
