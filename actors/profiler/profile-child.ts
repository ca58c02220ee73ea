// Child-process entry for profiling: receives one job over IPC, measures, reports progress and result.
import { readFileSync } from 'node:fs';
import type { TensorSpec } from '../../schemas/tensor.js';
import { measure, type MeasureOptions } from './profile-measure.js';
import type { SessionConfig } from '../../runtime/onnx/onnx-session.js';
import { parseValidationSet } from '../../runtime/validation-set.js';

export interface ChildJob {
  modelPath: string;
  validationPath?: string;
  session: SessionConfig;
  batchSizes: number[];
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  options: MeasureOptions;
}

process.once('message', (raw) => {
  const job = raw as ChildJob;
  void (async () => {
    try {
      const path = job.validationPath;
      const loadValidation = path ? () => parseValidationSet(readFileSync(path), job.inputs, job.outputs) : undefined;
      const result = await measure(
        { modelBytes: readFileSync(job.modelPath), session: job.session, batchSizes: job.batchSizes, inputs: job.inputs, loadValidation, options: job.options },
        (fraction, note) => process.send?.({ type: 'progress', fraction, note }),
      );
      process.send?.({ type: 'result', result }, () => process.exit(0));
    } catch (err) {
      process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) }, () => process.exit(1));
    }
  })();
});
