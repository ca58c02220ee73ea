// Worker-thread bootstrap for zoo/parallel.ts: loads the TypeScript helper through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./train-worker-impl.ts');
