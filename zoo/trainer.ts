// A small, exact CPU trainer (SGD with Adam) for the zoo's layer lists; seeded, so reruns agree.
import { layerShapes, paramShapes, type Architecture, type LayerParams } from './architectures.js';
import { seededRandom } from '../runtime/random.js';

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export interface Slot { p: LayerParams; gw: Float32Array; gb: Float32Array; mw: Float32Array; vw: Float32Array; mb: Float32Array; vb: Float32Array }

export class Trainer {
  readonly params: (LayerParams | null)[];
  readonly slots: (Slot | null)[];
  private readonly shapes: number[][];
  private readonly acts: Float32Array[];
  private readonly grads: Float32Array[];
  private readonly poolIdx: (Int32Array | null)[];
  private step = 0;

  constructor(readonly arch: Architecture, seed: number) {
    const rand = seededRandom(seed);
    this.shapes = layerShapes(arch.layers);
    this.params = paramShapes(arch.layers).map((dims) => {
      if (!dims) return null;
      const fanIn = dims.length === 4 ? dims[1] * dims[2] * dims[3] : dims[0];
      const scale = Math.sqrt(2 / fanIn); // He initialisation for ReLU networks
      const w = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => gaussian(rand) * scale);
      return { w, b: new Float32Array(dims.length === 4 ? dims[0] : dims[1]), wDims: dims };
    });
    this.slots = this.params.map((p) => p && {
      p, gw: new Float32Array(p.w.length), gb: new Float32Array(p.b.length),
      mw: new Float32Array(p.w.length), vw: new Float32Array(p.w.length),
      mb: new Float32Array(p.b.length), vb: new Float32Array(p.b.length),
    });
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    this.acts = this.shapes.map((s) => new Float32Array(size(s)));
    this.grads = this.shapes.map((s) => new Float32Array(size(s)));
    this.poolIdx = arch.layers.map((l, i) => (l.kind === 'maxpool' ? new Int32Array(size(this.shapes[i + 1])) : null));
  }

  /** Forward pass of one image; returns the logits (a view that the next call overwrites). */
  forward(image: Float32Array): Float32Array {
    this.acts[0].set(image);
    this.arch.layers.forEach((l, i) => {
      const x = this.acts[i], y = this.acts[i + 1], inS = this.shapes[i], outS = this.shapes[i + 1];
      if (l.kind === 'flatten') y.set(x);
      else if (l.kind === 'relu') for (let k = 0; k < y.length; k++) y[k] = x[k] > 0 ? x[k] : 0;
      else if (l.kind === 'dense') denseForward(x, y, this.params[i]!);
      else if (l.kind === 'conv') convForward(x, inS, y, outS, this.params[i]!, l.kernel);
      else maxpoolForward(x, inS, y, outS, this.poolIdx[i]!);
    });
    return this.acts[this.acts.length - 1];
  }

  /** Forward + backward for one example; gradients accumulate until `update`. Returns the loss. */
  accumulate(image: Float32Array, label: number): number {
    const logits = this.forward(image);
    const g = this.grads[this.grads.length - 1];
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let sum = 0;
    for (let k = 0; k < logits.length; k++) sum += Math.exp(logits[k] - max);
    for (let k = 0; k < logits.length; k++) g[k] = Math.exp(logits[k] - max) / sum - (k === label ? 1 : 0);
    for (let i = this.arch.layers.length - 1; i >= 0; i--) {
      const l = this.arch.layers[i];
      const x = this.acts[i], gy = this.grads[i + 1], gx = this.grads[i], inS = this.shapes[i], outS = this.shapes[i + 1];
      if (l.kind === 'flatten') gx.set(gy);
      else if (l.kind === 'relu') for (let k = 0; k < gx.length; k++) gx[k] = x[k] > 0 ? gy[k] : 0;
      else if (l.kind === 'dense') denseBackward(x, gy, gx, this.slots[i]!, i > 0);
      else if (l.kind === 'conv') convBackward(x, inS, gy, outS, gx, this.slots[i]!, l.kernel, i > 0);
      else { gx.fill(0); const idx = this.poolIdx[i]!; for (let k = 0; k < gy.length; k++) gx[idx[k]] += gy[k]; }
    }
    return -(logits[label] - max - Math.log(sum));
  }

  /**
   * Moves parameters (and, for a helper thread, gradients) into shared memory so several threads
   * can train one model: helpers accumulate gradients, the main thread sums them and steps.
   */
  share(params: { w: Float32Array; b: Float32Array }[], grads?: { w: Float32Array; b: Float32Array }[], copyInit = true): void {
    let k = 0;
    for (const s of this.slots) {
      if (!s) continue;
      if (copyInit) { params[k].w.set(s.p.w); params[k].b.set(s.p.b); }
      s.p.w = params[k].w; s.p.b = params[k].b;
      if (grads) { s.gw = grads[k].w; s.gb = grads[k].b; }
      k++;
    }
  }

  /** One Adam step over the accumulated gradients of `batch` examples. */
  update(batch: number, lr: number): void {
    this.step++;
    const b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const c1 = 1 - b1 ** this.step, c2 = 1 - b2 ** this.step;
    for (const s of this.slots) {
      if (!s) continue;
      for (const [w, g, m, v] of [[s.p.w, s.gw, s.mw, s.vw], [s.p.b, s.gb, s.mb, s.vb]] as const) {
        for (let k = 0; k < w.length; k++) {
          const gk = g[k] / batch;
          m[k] = b1 * m[k] + (1 - b1) * gk;
          v[k] = b2 * v[k] + (1 - b2) * gk * gk;
          w[k] -= (lr * (m[k] / c1)) / (Math.sqrt(v[k] / c2) + eps);
          g[k] = 0;
        }
      }
    }
  }

}

function denseForward(x: Float32Array, y: Float32Array, p: LayerParams): void {
  const out = y.length;
  y.set(p.b);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    if (xi === 0) continue; // inputs are mostly zero (blank pixels, inactive ReLUs)
    const row = i * out;
    for (let j = 0; j < out; j++) y[j] += xi * p.w[row + j];
  }
}

function denseBackward(x: Float32Array, gy: Float32Array, gx: Float32Array, s: Slot, needInputGrad: boolean): void {
  const out = gy.length, w = s.p.w;
  for (let j = 0; j < out; j++) s.gb[j] += gy[j];
  for (let i = 0; i < x.length; i++) {
    const xi = x[i], row = i * out;
    let acc = 0;
    for (let j = 0; j < out; j++) {
      if (xi !== 0) s.gw[row + j] += xi * gy[j];
      acc += w[row + j] * gy[j];
    }
    if (needInputGrad) gx[i] = acc;
  }
}

// Valid convolutions run over a "wide" output plane of OH x W (the input's width): each weight then
// touches one contiguous run of OH*W values, which is several times faster in JavaScript than a
// nested loop per output row. The last (k-1) columns of each wide row are discarded.
const wideBuffers = new Map<number, Float32Array>();
function wide(size: number): Float32Array {
  let b = wideBuffers.get(size);
  if (!b) { b = new Float32Array(size); wideBuffers.set(size, b); }
  return b;
}

function convForward(x: Float32Array, inS: number[], y: Float32Array, outS: number[], p: LayerParams, k: number): void {
  const [C, H, W] = inS, [F, OH, OW] = outS;
  const run = (OH - 1) * W + OW;
  const yw = wide(OH * W);
  for (let f = 0; f < F; f++) {
    yw.fill(p.b[f]);
    for (let c = 0; c < C; c++) {
      for (let ky = 0; ky < k; ky++) {
        for (let kx = 0; kx < k; kx++) {
          const wv = p.w[((f * C + c) * k + ky) * k + kx];
          const xo = c * H * W + ky * W + kx;
          for (let j = 0; j < run; j++) yw[j] += wv * x[xo + j];
        }
      }
    }
    for (let oy = 0; oy < OH; oy++) y.set(yw.subarray(oy * W, oy * W + OW), (f * OH + oy) * OW);
  }
}

function convBackward(
  x: Float32Array, inS: number[], gy: Float32Array, outS: number[], gx: Float32Array, s: Slot, k: number, needInputGrad: boolean,
): void {
  const [C, H, W] = inS, [F, OH, OW] = outS, w = s.p.w;
  const run = (OH - 1) * W + OW;
  const gw = wide(OH * W + 1); // distinct size from the forward buffer
  if (needInputGrad) gx.fill(0);
  for (let f = 0; f < F; f++) {
    gw.fill(0);
    for (let oy = 0; oy < OH; oy++) gw.set(gy.subarray((f * OH + oy) * OW, (f * OH + oy + 1) * OW), oy * W);
    for (let q = 0; q < OH * OW; q++) s.gb[f] += gy[f * OH * OW + q];
    for (let c = 0; c < C; c++) {
      for (let ky = 0; ky < k; ky++) {
        for (let kx = 0; kx < k; kx++) {
          const wi = ((f * C + c) * k + ky) * k + kx, wv = w[wi];
          const xo = c * H * W + ky * W + kx;
          let acc = 0;
          if (needInputGrad) {
            for (let j = 0; j < run; j++) { const g = gw[j]; acc += g * x[xo + j]; gx[xo + j] += wv * g; }
          } else {
            for (let j = 0; j < run; j++) acc += gw[j] * x[xo + j];
          }
          s.gw[wi] += acc;
        }
      }
    }
  }
}

function maxpoolForward(x: Float32Array, inS: number[], y: Float32Array, outS: number[], idx: Int32Array): void {
  const [C, H, W] = inS, [, OH, OW] = outS;
  for (let c = 0; c < C; c++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        let best = -Infinity, at = 0;
        for (let dy = 0; dy < 2; dy++) {
          for (let dx = 0; dx < 2; dx++) {
            const i = c * H * W + (oy * 2 + dy) * W + ox * 2 + dx;
            if (x[i] > best) { best = x[i]; at = i; }
          }
        }
        const o = (c * OH + oy) * OW + ox;
        y[o] = best;
        idx[o] = at;
      }
    }
  }
}
