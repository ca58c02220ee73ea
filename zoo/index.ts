// The built-in model zoo: committed ONNX files plus the held-out validation split, ready to register.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RegisterRequest } from '../schemas/registry.js';
import type { TensorSpec } from '../schemas/tensor.js';
import { encodeValidationSet } from '../runtime/validation-set.js';
import { projectFile } from '../runtime/project-files.js';
import { architectures, CLASSES, IMAGE_SHAPE, INPUT_NAME, OUTPUT_NAME } from './architectures.js';
import { loadSplit } from './data.js';
import { ZOO_DATASET, ZOO_TASK } from './names.js';

export { ZOO_DATASET, ZOO_TASK };
// From the project root: the committed models are not copied into dist/.
export const zooDir = projectFile('zoo', 'models');

export const zooInputs: TensorSpec[] = [{ name: INPUT_NAME, dtype: 'float32', shape: [null, ...IMAGE_SHAPE] }];
export const zooOutputs: TensorSpec[] = [{ name: OUTPUT_NAME, dtype: 'float32', shape: [null, CLASSES] }];

export interface ZooModel { name: string; description: string; path: string }

export function zooModels(): ZooModel[] {
  return architectures
    .map((a) => ({ name: a.name, description: a.description, path: join(zooDir, `${a.name}.onnx`) }))
    .filter((m) => existsSync(m.path));
}

export function zooModelBytes(name: string): Uint8Array {
  return readFileSync(join(zooDir, `${name}.onnx`));
}

/** The validation split (never seen in training) as a validation-set object; `limit` takes a prefix. */
export function zooValidationSet(limit?: number): Uint8Array {
  const v = loadSplit('validation', limit);
  return encodeValidationSet(
    { [INPUT_NAME]: { dtype: 'float32', shape: [v.count, ...IMAGE_SHAPE], data: new Uint8Array(v.images.buffer) } },
    { dtype: 'int32', shape: [v.count], data: new Uint8Array(v.labels.buffer) },
  );
}

export function zooRequest(m: ZooModel, modelObject: string, validationObject: string): RegisterRequest {
  return {
    name: m.name, task: ZOO_TASK, dataset: ZOO_DATASET, framework: 'onnx', object: modelObject,
    inputs: zooInputs, outputs: zooOutputs, submitter: 'infaas-zoo', description: m.description,
    validation: { object: validationObject },
  };
}
