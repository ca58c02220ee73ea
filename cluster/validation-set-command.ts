// `infaas validation-set <output>` as a commander command: its options and parsers load at start-up,
// the builder (ONNX Runtime, the codec, the schemas) only when the command runs (cluster/validation-set-cli.ts).
import { writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { DTYPES } from '../schemas/dtypes.js';
import type { DType } from '../schemas/tensor.js';
import type { Metric, ProfileShape } from '../schemas/registry.js';
import { parseMetricOption, parseShapeOption } from './register-options.js';

const fail = (message: string) => new InvalidArgumentError(message);

function nameValue(flag: string, text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq < 1) throw fail(`${flag} takes NAME=VALUE (NAME: the model input), got "${text}"`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** Adds `validation-set <output>` to a commander program. */
export function addValidationSetCommand(program: Command, print: (line: string) => void = (s) => { process.stdout.write(s + '\n'); }): Command {
  return program.command('validation-set <output>')
    .description('build a validation set (MessagePack, format 2; see docs/registry.md) from files: one file per sample and input')
    .option('--input <name=files>', 'files of one model input, one per sample: a directory, a file, or a quoted glob (dir/*.npy); .json tensors, .npy, or raw little-endian bytes (with --dtype and --shape); repeatable; samples pair up by sorted order',
      (v: string, prev: Record<string, string[]>) => { const [k, p] = nameValue('--input', v); return { ...prev, [k]: [...(prev[k] ?? []), p] }; }, {} as Record<string, string[]>)
    .option('--dtype <name=dtype>', `raw files: an input's element type (${DTYPES.join(', ')}); repeatable`,
      (v: string, prev: Record<string, DType>) => {
        const [k, d] = nameValue('--dtype', v);
        if (!(DTYPES as readonly string[]).includes(d)) throw fail(`dtype of ${k} must be one of ${DTYPES.join(', ')}`);
        return { ...prev, [k]: d as DType };
      }, {} as Record<string, DType>)
    .option('--shape <name=dims>', "raw files: one sample's shape, batch axis 1 included: x=1x3x48x320 (repeatable)", (v: string, prev: ProfileShape) => ({ ...prev, ...parseShapeOption(v) }), {} as ProfileShape)
    .option('--labels <file>', 'one label per line, in sample order: an integer class (top1/top5; several per line for a multi-row output) or text (ctc)')
    .option('--label-kind <kind>', 'read the labels as class or text (default: class when every line is a whole number, text with --charset)', (v: string) => {
      if (v !== 'class' && v !== 'text') throw fail('class or text');
      return v;
    })
    .option('--charset <file>', 'ctc: the characters output classes map to, one per line (as ppocr_keys_v1.txt); class k is line k (class 0 the blank)')
    .option('--space', "append a space to the charset, as PaddleOCR's recognisers do (their 6625 classes: blank, 6623 keys, space)")
    .option('--limit <n>', 'take at most the first n samples', (v: string) => {
      const k = Number(v);
      if (!Number.isInteger(k) || k < 1) throw fail('a positive whole number');
      return k;
    })
    .option('--model <file>', 'check the set against this ONNX file (its inputs, batch axis 0) and the metric')
    .option('--metric <metric>', 'with --model: the metric to check for (default: top1 for class labels, ctc for text, fidelity without labels)', parseMetricOption)
    .action(async (output: string, o: { input: Record<string, string[]>; dtype: Record<string, DType>; shape: ProfileShape; labels?: string; labelKind?: 'class' | 'text'; charset?: string; space?: boolean; limit?: number; model?: string; metric?: Metric }) => {
      const { buildValidationSet } = await import('./validation-set-cli.js');
      const { bytes, summary } = buildValidationSet({
        inputs: o.input, dtypes: o.dtype, shapes: o.shape, labels: o.labels, labelKind: o.labelKind, charset: o.charset, space: o.space,
        limit: o.limit, model: o.model, metric: o.metric,
      }, print);
      writeFileSync(output, bytes);
      print(`wrote ${output}: ${summary}`);
    });
}
