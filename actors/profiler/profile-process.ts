// Runs one profiling job in a fresh child process: the parent's event loop stays free, and the
// child's peak memory belongs to the measured session alone.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildJob } from './profile-child.js';
import type { MeasureResult } from './profile-measure.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { compiled } from '../../runtime/project-files.js';

const isErrorCode = (c: unknown): c is ErrorCode => Object.values(ErrorCode).includes(c as ErrorCode);

// Compiled (dist/), the child is the JavaScript beside this file. From the sources it is TypeScript
// too: loaded through tsx, resolved from this package (not the caller's cwd).
const CHILD = fileURLToPath(new URL(compiled ? './profile-child.js' : './profile-child.ts', import.meta.url));
const EXEC_ARGV = compiled ? [] : ['--import', import.meta.resolve('tsx')];

export function runProfileChild(
  job: ChildJob,
  onProgress: (fraction: number, note: string) => void,
  timeoutMs = 10 * 60_000,
): Promise<MeasureResult> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [], { execArgv: EXEC_ARGV, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    let settled = false;
    child.stderr?.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-2000); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); finish(new Error(`profiling timed out after ${timeoutMs} ms`)); }, timeoutMs);
    const finish = (err: Error | null, result?: MeasureResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err); else resolve(result!);
    };
    child.on('message', (m: { type: string; fraction?: number; note?: string; result?: MeasureResult; message?: string; code?: string }) => {
      if (m.type === 'progress') onProgress(m.fraction ?? 0, m.note ?? '');
      else if (m.type === 'result') finish(null, m.result);
      // A coded error (VALIDATION_SET_INVALID: a label the output cannot have) keeps its code across the process boundary.
      else if (m.type === 'error') finish(isErrorCode(m.code) ? new InfaasError(m.code, m.message ?? '') : new Error(m.message));
    });
    child.once('exit', (code, signal) => finish(new Error(`profiling process exited (${signal ?? code}) without a result: ${stderr.trim().slice(-500)}`)));
    child.once('error', (err) => finish(err));
    child.send(job);
  });
}
