// Provisioners: how the VM-autoscaler adds and removes workers. The local one starts `infaas
// worker` processes on this machine; the command one runs operator-configured shell commands
// (an ssh launch script, a cloud CLI) with the worker's id, class and the NATS URL in the environment.
import { spawn, type ChildProcess } from 'node:child_process';
import { customAlphabet } from 'nanoid';
import type { Logger } from '../runtime/log.js';
import { projectFile } from '../runtime/project-files.js';

export interface Provisioner {
  /** Starts a worker of the class; resolves with the id it will register under. */
  start(hardwareClass: string): Promise<string>;
  /** Stops (drains) a worker this provisioner started. */
  stop(workerId: string): Promise<void>;
  /** Ids of the workers this provisioner started and has not stopped. */
  managed(): string[];
  close(): Promise<void>;
}

const ids = customAlphabet('abcdefghijklmnopqrstuvwxyz0123456789', 8);
const BIN = projectFile('bin', 'infaas.js');

export interface LocalProvisionerOptions {
  natsUrl: string;
  /** Threads each started worker may use. */
  threads: number;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** More `infaas worker` flags (a baseline policy's: --replication-only, --batching aimd). */
  workerArgs?: readonly string[];
}

export class LocalProvisioner implements Provisioner {
  private readonly children = new Map<string, ChildProcess>();

  constructor(private readonly o: LocalProvisionerOptions) {}

  async start(hardwareClass: string): Promise<string> {
    const id = `worker-${ids()}`;
    const child = spawn(process.execPath, [BIN, 'worker', '-s', this.o.natsUrl, '--hardware-class', hardwareClass, '--threads', String(this.o.threads), '--id', id, ...(this.o.workerArgs ?? [])], {
      stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, ...this.o.env },
    });
    child.once('exit', (code, signal) => {
      this.children.delete(id);
      this.o.log.info({ worker: id, code, signal }, 'provisioned worker exited');
    });
    this.children.set(id, child);
    this.o.log.info({ worker: id, hardwareClass, pid: child.pid }, 'started a local worker');
    return id;
  }

  /** SIGTERM: the worker drains its instances, withdraws from KV and exits. */
  async stop(workerId: string): Promise<void> {
    const child = this.children.get(workerId);
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  }

  managed(): string[] {
    return [...this.children.keys()];
  }

  async close(): Promise<void> {
    await Promise.all(this.managed().map((id) => this.stop(id)));
  }
}

export interface CommandProvisionerOptions {
  /** Run with INFAAS_WORKER_ID, INFAAS_HARDWARE_CLASS and INFAAS_NATS_URL set; must start the worker. */
  startCommand: string;
  /** Run with INFAAS_WORKER_ID set; must make that worker drain and exit. */
  stopCommand: string;
  natsUrl: string;
  log: Logger;
}

export class CommandProvisioner implements Provisioner {
  private readonly started = new Set<string>();

  constructor(private readonly o: CommandProvisionerOptions) {}

  private run(command: string, env: Record<string, string>): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => { stderr += b; });
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`"${command}" exited ${code}: ${stderr.trim().slice(0, 500)}`))));
    });
  }

  async start(hardwareClass: string): Promise<string> {
    const id = `worker-${ids()}`;
    await this.run(this.o.startCommand, { INFAAS_WORKER_ID: id, INFAAS_HARDWARE_CLASS: hardwareClass, INFAAS_NATS_URL: this.o.natsUrl });
    this.started.add(id);
    this.o.log.info({ worker: id, hardwareClass }, 'start command ran');
    return id;
  }

  async stop(workerId: string): Promise<void> {
    if (!this.started.has(workerId)) return;
    await this.run(this.o.stopCommand, { INFAAS_WORKER_ID: workerId });
    this.started.delete(workerId);
  }

  managed(): string[] {
    return [...this.started];
  }

  async close(): Promise<void> {}
}
