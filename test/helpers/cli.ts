// Runs the real `infaas` command (bin/infaas.js) in its own process and collects its output.
import { spawn } from 'node:child_process';

export const BIN = new URL('../../bin/infaas.js', import.meta.url).pathname;

export function runInfaas(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
