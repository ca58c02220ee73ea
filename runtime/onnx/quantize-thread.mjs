// Worker-thread bootstrap for runtime/onnx/quantize-offload.ts: loads the TypeScript quantiser through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./quantize-thread-impl.ts');
