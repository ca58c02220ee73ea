// A training helper thread: accumulates gradients for the indices it is sent into shared buffers.
import { parentPort, workerData } from 'node:worker_threads';
import type { Architecture } from './architectures.js';
import { PIXELS } from './data.js';
import { Trainer } from './trainer.js';

interface Shared { w: SharedArrayBuffer; b: SharedArrayBuffer }
const data = workerData as { arch: Architecture; params: Shared[]; grads: Shared[]; images: SharedArrayBuffer; labels: SharedArrayBuffer };
const trainer = new Trainer(data.arch, 0);
const params = data.params.map((p) => ({ w: new Float32Array(p.w), b: new Float32Array(p.b) }));
const grads = data.grads.map((p) => ({ w: new Float32Array(p.w), b: new Float32Array(p.b) }));
// The main thread owns the parameters (its initialisation is already in them); only the
// gradient buffers are this thread's.
trainer.share(params, grads, false);
const images = new Float32Array(data.images);
const labels = new Int32Array(data.labels);

parentPort!.on('message', (indices: number[]) => {
  for (const g of grads) { g.w.fill(0); g.b.fill(0); }
  let loss = 0;
  for (const i of indices) loss += trainer.accumulate(images.subarray(i * PIXELS, (i + 1) * PIXELS), labels[i]);
  parentPort!.postMessage({ loss });
});
