// `infaas deploy up|down|status|config <hosts.json>`: the launch scripts of cluster/deploy.ts on
// the command line. Modules load inside the actions, so other commands do not pay for them.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { DeploymentSpec } from './deploy-spec.js';
import type { TransportName } from './deploy-transport.js';

interface DeployFlags { transport: TransportName; sshOption: string[]; stateDir?: string; wait: boolean }

async function load(file: string): Promise<DeploymentSpec> {
  const { parseDeployment } = await import('./deploy-spec.js');
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a JSON hosts file: ${(err as Error).message}`);
  }
  return parseDeployment(doc);
}

/** The worker a provisioner's command asks for (cluster/provisioners.ts sets these variables). */
export interface ProvisionedWorker { id?: string; hardwareClass?: string }

export function addDeployCommand(program: Command, print: (s: string) => void, dataDir: string, worker: ProvisionedWorker = {}): void {
  const deploy = program.command('deploy').description('start, stop and report a deployment on several hosts from one JSON hosts file, over ssh (docs/deploy.md)');
  const withFlags = (c: Command) => c
    .option('--transport <name>', 'ssh (default), or local: run the same scripts on this machine (hosts with "netns" run in that network namespace)', (v: string) => {
      if (v !== 'ssh' && v !== 'local') throw new InvalidArgumentError('ssh or local');
      return v;
    }, 'ssh')
    .option('--ssh-option <opt>', 'an extra ssh argument, e.g. --ssh-option=-i --ssh-option=key.pem (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--state-dir <dir>', "where this machine keeps the deployment's generated credentials (default <data dir>/deploy/<name>)")
    .option('--no-wait', 'do not wait for JetStream before starting controllers and workers (when this machine cannot reach the NATS nodes)');
  const setup = async (file: string, o: DeployFlags) => {
    const spec = await load(file);
    const { transportNamed } = await import('./deploy-transport.js');
    return { spec, transport: transportNamed(o.transport, { options: o.sshOption }), stateDir: resolve(o.stateDir ?? join(dataDir, 'deploy', spec.name)) };
  };
  const finish = (rs: { state: string }[], table: string) => {
    print(table);
    if (rs.some((r) => r.state === 'failed')) process.exitCode = 1;
  };

  withFlags(deploy.command('up <file>').description('start every process that is not running: NATS nodes, then controllers, then workers (idempotent)'))
    .action(async (file: string, o: DeployFlags) => {
      const { spec, transport, stateDir } = await setup(file, o);
      const { deployUp, reportTable } = await import('./deploy.js');
      const rs = await deployUp(spec, { transport, stateDir, ...(o.wait ? {} : { waitMs: 0 }) });
      finish(rs, reportTable(rs));
    });
  withFlags(deploy.command('down <file>').description('stop everything: workers first (they drain), then controllers, then NATS nodes'))
    .action(async (file: string, o: DeployFlags) => {
      const { spec, transport } = await setup(file, o);
      const { deployDown, reportTable } = await import('./deploy.js');
      const rs = await deployDown(spec, { transport });
      finish(rs, reportTable(rs));
    });
  withFlags(deploy.command('status <file>').description('what runs where'))
    .action(async (file: string, o: DeployFlags) => {
      const { spec, transport } = await setup(file, o);
      const { deployStatus, reportTable } = await import('./deploy.js');
      const rs = await deployStatus(spec, { transport });
      finish(rs, reportTable(rs));
    });
  withFlags(deploy.command('add-worker <file>').description("start one worker on a host: the controller's --start-command (id and class from INFAAS_WORKER_ID and INFAAS_HARDWARE_CLASS)"))
    .requiredOption('--host <name>', 'host of the hosts file to start it on')
    .option('--id <id>', 'worker id', worker.id)
    .option('--hardware-class <class>', 'its hardware class', worker.hardwareClass)
    .option('--price <dollars>', 'its hourly price', Number)
    .option('--threads <n>', 'threads it may use', Number)
    .action(async (file: string, o: DeployFlags & { host: string; id?: string; hardwareClass?: string; price?: number; threads?: number }) => {
      if (!o.id || !o.hardwareClass) throw new InvalidArgumentError('--id and --hardware-class (or INFAAS_WORKER_ID and INFAAS_HARDWARE_CLASS) are required');
      const { spec, transport, stateDir } = await setup(file, o);
      const { deployAddWorker, reportTable } = await import('./deploy.js');
      const r = await deployAddWorker(spec, { transport, stateDir }, o.host, {
        role: 'worker', id: o.id, hardwareClass: o.hardwareClass, ...(o.price !== undefined ? { price: o.price } : {}), ...(o.threads ? { threads: o.threads } : {}),
      });
      finish([r], reportTable([r]));
    });
  withFlags(deploy.command('remove-worker <file>').description("drain and stop a worker add-worker started: the controller's --stop-command (id from INFAAS_WORKER_ID)"))
    .requiredOption('--host <name>', 'host it runs on')
    .option('--id <id>', 'worker id', worker.id)
    .action(async (file: string, o: DeployFlags & { host: string; id?: string }) => {
      if (!o.id) throw new InvalidArgumentError('--id (or INFAAS_WORKER_ID) is required');
      const { spec, transport } = await setup(file, o);
      const { deployRemoveWorker, reportTable } = await import('./deploy.js');
      const r = await deployRemoveWorker(spec, { transport }, o.host, o.id);
      finish([r], reportTable([r]));
    });
  deploy.command('config <file>').description("write each NATS node's nats-server config (no credentials) to a directory, to inspect or to run by hand")
    .option('--out <dir>', 'directory', 'nats-configs')
    .action(async (file: string, o: { out: string }) => {
      const spec = await load(file);
      const { natsNodes } = await import('./deploy-spec.js');
      const { natsClusterConfig } = await import('./nats-cluster.js');
      mkdirSync(o.out, { recursive: true });
      for (const c of natsClusterConfig({ cluster: spec.name, nodes: natsNodes(spec), ...(spec.maxPayload ? { maxPayload: spec.maxPayload } : {}) })) {
        writeFileSync(join(o.out, `${c.name}.conf`), c.text);
        print(`${join(o.out, `${c.name}.conf`)}  (clients: ${c.url}, monitoring: ${c.monitorUrl})`);
      }
    });
}
