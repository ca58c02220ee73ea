// How launch scripts reach a host: ssh by default; "local" runs the same scripts on this machine
// (in the host's network namespace when it names one), which is how tests build several hosts.
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import type { HostSpec } from './deploy-spec.js';

export interface RunResult { code: number; stdout: string; stderr: string }

export interface Transport {
  readonly name: string;
  /** Runs a POSIX sh script on the host (fed on stdin, from the login directory). */
  run(host: HostSpec, script: string): Promise<RunResult>;
}

function runWithStdin(command: string, args: readonly string[], script: string, cwd?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(script);
  });
}

export interface SshOptions {
  /** ssh binary (default `ssh`). */
  ssh?: string;
  /** Extra ssh options, e.g. ['-i', 'key.pem', '-o', 'StrictHostKeyChecking=accept-new']. */
  options?: readonly string[];
}

/** Runs `sh -s` on the host over ssh (non-interactive: keys or an agent, no password prompts). */
export function sshTransport(o: SshOptions = {}): Transport {
  return {
    name: 'ssh',
    run: (host, script) => runWithStdin(o.ssh ?? 'ssh', ['-o', 'BatchMode=yes', ...(o.options ?? []), host.ssh ?? host.address, 'sh -s'], script),
  };
}

/**
 * Runs the script on this machine, from the home directory as ssh would; a host with `netns`
 * runs in that network namespace (`ip netns exec`, root only).
 */
export function localTransport(): Transport {
  return {
    name: 'local',
    run: (host, script) => (host.netns
      ? runWithStdin('ip', ['netns', 'exec', host.netns, 'sh', '-s'], script, homedir())
      : runWithStdin('sh', ['-s'], script, homedir())),
  };
}

export const TRANSPORTS = ['ssh', 'local'] as const;
export type TransportName = (typeof TRANSPORTS)[number];

export function transportNamed(name: TransportName, ssh: SshOptions = {}): Transport {
  return name === 'local' ? localTransport() : sshTransport(ssh);
}
