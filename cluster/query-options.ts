// `infaas query --input` parsing, apart from the query code: commander calls it while parsing, so the
// CLI loads it at start-up and the rest of `infaas query` only when the command runs.
import { InvalidArgumentError } from 'commander';
import { DTYPES } from '../schemas/dtypes.js';
import type { DType } from '../schemas/tensor.js';

/** `--input name=@file[:dtype[:dims]]`: a tensor's raw little-endian bytes from a file. */
export interface RawInput { name: string; file: string; dtype?: DType; dims?: (number | null)[] }

export function parseRawInput(text: string, prev: RawInput[] = []): RawInput[] {
  const m = /^([^=]{1,128})=@([^:]+)(?::([a-z0-9]*)(?::([0-9x?]*))?)?$/.exec(text);
  const usage = 'expected name=@file[:dtype[:dims]], e.g. image=@img.bin:float32:1x3x640x640 (dims may hold one ? to take from the file size; dtype and dims default to the model\'s declaration)';
  if (!m) throw new InvalidArgumentError(usage);
  const [, name, file, dtype, dims] = m;
  if (dtype && !(DTYPES as readonly string[]).includes(dtype)) throw new InvalidArgumentError(`unknown dtype "${dtype}" (one of ${DTYPES.join(', ')})`);
  const shape = dims ? dims.split('x').map((d) => (d === '?' ? null : Number(d))) : undefined;
  if (shape?.some((d) => d !== null && (!Number.isInteger(d) || d < 0))) throw new InvalidArgumentError(`bad dimensions "${dims}": ${usage}`);
  if (shape && shape.filter((d) => d === null).length > 1) throw new InvalidArgumentError(`dimensions "${dims}": at most one ? (taken from the file size)`);
  return [...prev, { name, file, ...(dtype ? { dtype: dtype as DType } : {}), ...(shape ? { dims: shape } : {}) }];
}
