// `infaas validation-set`: a format-2 set from .npy, .json and raw files, labels and a charset,
// checked against a real model file; clear errors for what does not add up.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { addValidationSetCommand, parseNpy } from '../cluster/validation-set-cli.js';
import { parseValidationSet } from '../runtime/validation-set.js';
import { OCR_MODELS, syntheticTextImage } from '../zoo/ocr.js';

function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

async function run(args: string[]): Promise<string[]> {
  const out: string[] = [];
  const program = new Command().exitOverride();
  addValidationSetCommand(program, (s) => out.push(s));
  await program.parseAsync(['node', 'infaas', 'validation-set', ...args]);
  return out;
}

const image = (w: number, seed: number) => syntheticTextImage(48, w, seed);

t.test('from .npy files in a directory, integer labels, checked against the real cls model', async (t) => {
  const dir = t.testdir({
    imgs: Object.fromEntries([2, 10, 1].map((k) => [`img${k}.npy`, npy('<f4', [1, 3, 48, 64 * k], image(64 * k, k))])),
    'labels.txt': '0\n1\n1\n',
  });
  const out = join(dir, 'set.msgpack');
  const lines = await run([out, '--input', `x=${dir}/imgs`, '--labels', `${dir}/labels.txt`, '--model', OCR_MODELS.cls]);
  t.match(lines.join('\n'), /x: 3 files[\s\S]*fits ch_ppocr_mobile_v2\.0_cls_infer\.onnx for metric top1 at 3 size\(s\)[\s\S]*wrote .*set\.msgpack: 3 samples/);
  const set = parseValidationSet(readFileSync(out), [{ name: 'x', dtype: 'float32', shape: [null, 3, null, null] }], [{ name: 'y', dtype: 'float32', shape: [null, 2] }], { kind: 'top1' });
  t.same(set.items.map((i) => i.inputs.x.shape[3]), [64, 128, 640], 'natural order: img1, img2, img10');
  t.same(set.items.map((i) => i.label), [0, 1, 1]);
  t.equal((set.items[0].inputs.x.values as Float32Array)[0], image(64, 1)[0]);
});

t.test('raw and .json files, text labels with a charset', async (t) => {
  const raw = (v: number[]) => Buffer.from(Float32Array.from(v).buffer);
  const dir = t.testdir({
    'a-1.bin': raw([1, 2]), 'a-2.bin': raw([3, 4]),
    'b-1.json': JSON.stringify({ dtype: 'int64', shape: [1, 1], data: [7] }), 'b-2.json': JSON.stringify({ dtype: 'int64', shape: [1, 1], data: [8] }),
    'labels.txt': 'ab\r\nb a\r\n', 'keys.txt': 'a\nb\n',
  });
  const out = join(dir, 'set.msgpack');
  const lines = await run([out, '--input', `a=${dir}/a-*.bin`, '--dtype', 'a=float32', '--shape', 'a=1x2', '--input', `b=${dir}/b-?.json`, '--labels', `${dir}/labels.txt`, '--charset', `${dir}/keys.txt`, '--space']);
  t.match(lines.at(-1), /2 samples; a \[1,2\], b \[1,1\]; labels: text \(charset of 3\)/);
  const set = parseValidationSet(readFileSync(out), [{ name: 'a', dtype: 'float32', shape: [null, 2] }, { name: 'b', dtype: 'int64', shape: [null, 1] }],
    [{ name: 'seq', dtype: 'float32', shape: [null, null, 4] }], { kind: 'ctc' });
  t.same(set.charset, ['a', 'b', ' ']);
  t.same(set.items.map((i) => i.label), ['ab', 'b a']);
  t.same(Array.from(set.items[1].inputs.b.values as BigInt64Array), [8n]);
});

t.test('errors say what to fix', async (t) => {
  const dir = t.testdir({
    'x1.bin': Buffer.alloc(8), 'x2.bin': Buffer.alloc(8), 'y1.bin': Buffer.alloc(8), 'short.bin': Buffer.alloc(3),
    'one.txt': '1\n', 'words.txt': 'ab\ncd\n', 'bad.npy': npy('>f4', [1, 2], new Float32Array(2)),
    'img.npy': npy('<f4', [3, 48, 64], image(64, 1)),
  });
  const cases: [string[], RegExp][] = [
    [['--input', `${dir}/x1.bin`], /--input takes NAME=VALUE/],
    [['--input', `x=${dir}/x*.bin`], /raw file needs --dtype and --shape/],
    [['--input', `x=${dir}/x*.bin`, '--dtype', 'x=float32', '--shape', 'x=1x2', '--input', `y=${dir}/y*.bin`], /"x" has 2 files but "y" has 1/],
    [['--input', `x=${dir}/x*.bin`, '--dtype', 'x=float32', '--shape', 'x=1x2', '--labels', `${dir}/one.txt`], /1 labels for 2 samples/],
    [['--input', `x=${dir}/x*.bin`, '--dtype', 'x=float32', '--shape', 'x=1x2', '--labels', `${dir}/words.txt`, '--label-kind', 'class'], /line 1: "ab" is not a whole number/],
    [['--input', `x=${dir}/short.bin`, '--dtype', 'x=float32', '--shape', 'x=1x2'], /needs 8 bytes, the file has 3/],
    [['--input', `x=${dir}/bad.npy`], /dtype >f4 is not one of/],
    [['--input', `x=${dir}/nothing*.npy`], /no files for input "x"/],
    [['--input', `x=${dir}/img.npy`, '--model', OCR_MODELS.cls], /VALIDATION_SET_INVALID|has shape \[3,48,64\]; expected \[1,3,\?,\?\]/],
    [['--input', `x=${dir}/x1.bin`, '--dtype', 'x=float16'], /dtype of x must be one of/],
  ];
  for (const [args, message] of cases) {
    await t.rejects(run([join(dir, 'out.msgpack'), ...args]), { message }, args.join(' '));
  }
});

t.test('parseNpy reads the header of format 2 too', async (t) => {
  const v1 = npy('<i8', [2], BigInt64Array.of(1n, 2n));
  const header = v1.subarray(10);
  const v2 = Buffer.concat([Buffer.from('\x93NUMPY\x02\x00', 'latin1'), Buffer.alloc(4), header]);
  v2.writeUInt32LE(v1.readUInt16LE(8), 8);
  const tns = parseNpy(v2);
  t.same([tns.dtype, tns.shape], ['int64', [2]]);
});
