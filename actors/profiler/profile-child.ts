// Child-process entry for profiling: receives one job over IPC, measures, reports progress and result.
import { readFileSync } from 'node:fs';
import type { TensorSpec } from '../../schemas/tensor.js';
import type { Metric, ProfileShape } from '../../schemas/registry.js';
import { measure, type MeasureOptions } from './profile-measure.js';
import type { SessionConfig } from '../../runtime/onnx/onnx-session.js';
import { parseValidationSet } from '../../runtime/validation-set.js';
import { InfaasError } from '../../schemas/errors.js';

export interface ChildJob {
  modelPath: string;
  /** The registered fp32 file, for fidelity. */
  referencePath?: string;
  validationPath?: string;
  session: SessionConfig;
  batchSizes: number[];
  batched?: boolean;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  shapes?: ProfileShape[];
  metric?: Metric;
  declaredAccuracy?: number;
  options: MeasureOptions;
}

process.once('message', (raw) => {
  const job = raw as ChildJob;
  void (async () => {
    try {
      const path = job.validationPath;
      const loadValidation = path ? () => parseValidationSet(readFileSync(path), job.inputs, job.outputs, job.metric ?? { kind: 'top1' }) : undefined;
      const { modelPath, referencePath, validationPath: _, ...rest } = job;
      const result = await measure(
        { ...rest, modelBytes: readFileSync(modelPath), referenceBytes: referencePath ? readFileSync(referencePath) : undefined, loadValidation },
        (fraction, note) => process.send?.({ type: 'progress', fraction, note }),
      );
      process.send?.({ type: 'result', result }, () => process.exit(0));
    } catch (err) {
      const code = err instanceof InfaasError ? err.code : undefined;
      process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err), code }, () => process.exit(1));
    }
  })();
});
