// Data-parallel training on worker threads: the minibatch is split between helpers that share the
// model's parameters (SharedArrayBuffer); the main thread sums their gradients and takes the step.
import { Worker } from 'node:worker_threads';
import { paramShapes, type Architecture } from './architectures.js';
import { Trainer } from './trainer.js';

type Pair = { w: Float32Array; b: Float32Array };

function sharedPairs(arch: Architecture): { pairs: Pair[]; buffers: { w: SharedArrayBuffer; b: SharedArrayBuffer }[] } {
  const buffers = paramShapes(arch.layers).filter((d): d is number[] => d !== null).map((d) => ({
    w: new SharedArrayBuffer(4 * d.reduce((a, b) => a * b, 1)),
    b: new SharedArrayBuffer(4 * (d.length === 4 ? d[0] : d[1])),
  }));
  return { buffers, pairs: buffers.map((x) => ({ w: new Float32Array(x.w), b: new Float32Array(x.b) })) };
}

export class ParallelTrainer {
  private readonly workers: Worker[] = [];
  private readonly grads: Pair[][] = [];

  constructor(readonly trainer: Trainer, threads: number, images: Float32Array, labels: Int32Array) {
    const params = sharedPairs(trainer.arch);
    trainer.share(params.pairs);
    const imageBuf = new SharedArrayBuffer(images.byteLength);
    new Float32Array(imageBuf).set(images);
    const labelBuf = new SharedArrayBuffer(labels.byteLength);
    new Int32Array(labelBuf).set(labels);
    for (let t = 0; t < threads; t++) {
      const g = sharedPairs(trainer.arch);
      this.grads.push(g.pairs);
      this.workers.push(new Worker(new URL('./train-worker.mjs', import.meta.url), {
        workerData: { arch: trainer.arch, params: params.buffers, grads: g.buffers, images: imageBuf, labels: labelBuf },
      }));
    }
  }

  /** Forward/backward over `indices` split across threads, then one Adam step; returns summed loss. */
  async step(indices: number[], lr: number): Promise<number> {
    const per = Math.ceil(indices.length / this.workers.length);
    const losses = await Promise.all(this.workers.map((w, t) => new Promise<number>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      w.once('error', onError);
      w.once('message', (m: { loss: number }) => { w.off('error', onError); resolve(m.loss); });
      w.postMessage(indices.slice(t * per, (t + 1) * per));
    })));
    let k = 0;
    for (const s of this.trainer.slots) {
      if (!s) continue;
      for (const g of this.grads) {
        for (let i = 0; i < s.gw.length; i++) s.gw[i] += g[k].w[i];
        for (let i = 0; i < s.gb.length; i++) s.gb[i] += g[k].b[i];
      }
      k++;
    }
    this.trainer.update(indices.length, lr);
    return losses.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
