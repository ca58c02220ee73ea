// The infaas command line: local development stack, controller/worker processes, registry commands.
// Start-up loads only what the options and help need; each action imports its heavy modules (NATS stacks,
// ONNX Runtime, actors, bench) when it runs, so `infaas --help` and quick commands answer at once.
import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { DType, TensorSpec } from '../schemas/tensor.js';
import { DTYPES } from '../schemas/dtypes.js';
import type { ModelInfo, RegistryClient } from '../runtime/client/registry-client.js';
import { ZOO_TASK } from '../zoo/names.js';
import { InfaasError } from '../schemas/errors.js';
import type { Logger } from '../runtime/log.js';
import { exitAfterStop, STOP_BUS_MS, STOP_DRAIN_MS, StopBudget, stopSignal } from '../runtime/stopping.js';
import { readEnv } from './config.js';
import { checkMaxPayload } from '../runtime/bus/max-payload.js';
import type { Stack } from './local.js';
import type { NatsAccess } from '../runtime/bus/auth.js';
import { ROLES, roleDescriptions, type Role } from '../subjects/access.js';
import { modelsTable, variantsTable, workersTable } from './report.js';
import type { InstanceRecord, WorkerRecord } from '../schemas/worker.js';
import type { QueryFlags } from './query-command.js';
import { parseRawInput, type RawInput } from './query-options.js';
import { parseBatchAxisOption, parseMetricOption, parseShapeOption } from './register-options.js';
import { addValidationSetCommand } from './validation-set-command.js';
import { addDeployCommand } from './deploy-cli.js';
import type { Metric, ProfileShape } from '../schemas/registry.js';
import type { Provisioner } from './provisioners.js';
import type { VmAutoscaler } from '../actors/vm-autoscaler/index.js';
import { benchDefaults } from '../bench/live/defaults.js';
import type { BenchFlags } from '../bench/live/options.js';
import { shapeNames } from '../bench/trace.js';
// The policy table and batching modes straight from their modules: the actors' index files load the actors.
import { policies, policyNames, workersFor } from '../actors/dispatcher/baselines.js';
import type { SelectionPolicy } from '../actors/dispatcher/index.js';
import { BATCHING_MODES, type BatchingMode } from '../actors/instance/batching.js';

const env = readEnv();
const print = (s: string): void => { process.stdout.write(s + '\n'); };

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1 || n > 65535) throw new InvalidArgumentError('a port number (or -1 for any free port)');
  return n;
}

/** "8MiB", "16m", "1048576": bytes for the embedded server's max payload (1 KiB to 64 MiB). */
export function parseMaxPayload(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|kib|kb|m|mib|mb)?$/i.exec(v.trim());
  const unit = m?.[2]?.toLowerCase().startsWith('k') ? 1024 : m?.[2] ? 1024 * 1024 : 1;
  const n = m ? Math.round(Number(m[1]) * unit) : NaN;
  try { return checkMaxPayload(n); } catch (err) { throw new InvalidArgumentError(`${(err as Error).message} (e.g. 8MiB, 512KiB or bytes)`); }
}

function parsePositive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a number > 0');
  return n;
}

function parseSeed(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('a whole number');
  return n;
}

function parseFraction(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('a fraction in [0,1]');
  return n;
}

function parseNonNegative(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('a number >= 0');
  return n;
}

/** A selection policy by name (actors/dispatcher/baselines.ts); unknown names list the known ones. */
function parsePolicy(v: string): string {
  if (!Object.hasOwn(policies, v)) throw new InvalidArgumentError(`unknown policy "${v}" (one of: ${policyNames.join(', ')})`);
  return v;
}
const policyHelp = `selection policy: infaas (model-less) or a baseline: ${policyNames.filter((n) => n !== 'infaas').join(', ')} (docs/query.md, "Baseline policies")`;
/**
 * The stack options a --policy name sets: the dispatcher's policy and what its workers need
 * (fixed and clipper: replication-only autoscaling; clipper: AIMD batching), as worker serving
 * options and as `infaas worker` flags for the workers a controller starts.
 */
function policyOptions(name: string): { policy?: SelectionPolicy; replicationOnly: boolean; batching: BatchingMode; serving: WorkerServing; workerArgs: string[] } {
  const { replicationOnly, batching } = workersFor(name);
  return {
    ...(name === 'infaas' ? {} : { policy: policies[name] }), replicationOnly, batching,
    serving: servingFor(replicationOnly, batching),
    workerArgs: [...(replicationOnly ? ['--replication-only'] : []), ...(batching !== 'work-conserving' ? ['--batching', batching] : [])],
  };
}

type WorkerServing = { scaling?: { switches: false }; instance?: { batching: BatchingMode } };
/** A worker's serving options for replication-only autoscaling and a batching mode (empty for the defaults). */
function servingFor(replicationOnly: boolean | undefined, batching: BatchingMode | undefined): WorkerServing {
  return {
    ...(replicationOnly ? { scaling: { switches: false } } : {}),
    ...(batching && batching !== 'work-conserving' ? { instance: { batching } } : {}),
  };
}

function parseBatching(v: string): BatchingMode {
  if (!(BATCHING_MODES as readonly string[]).includes(v)) throw new InvalidArgumentError(`one of: ${BATCHING_MODES.join(', ')}`);
  return v as BatchingMode;
}

/** "image:float32:?x1x28x28" -> {name, dtype, shape}; '?' marks a dynamic (batch) dimension. */
export function parseTensorSpec(text: string): TensorSpec {
  const [name, dtype, dims] = text.split(':');
  if (!name || !dtype || dims === undefined || !(DTYPES as readonly string[]).includes(dtype)) {
    throw new InvalidArgumentError(`expected name:dtype:dims such as image:float32:?x1x28x28, or name:dtype: for a scalar (dtypes: ${DTYPES.join(', ')})`);
  }
  if (dims === '') return { name, dtype: dtype as DType, shape: [] };
  const shape = dims.split('x').map((d) => (d === '?' || d === 'N' ? null : Number(d)));
  if (shape.some((d) => d !== null && (!Number.isInteger(d) || d < 1))) throw new InvalidArgumentError(`bad dimensions "${dims}"`);
  return { name, dtype: dtype as DType, shape };
}

const collect = (v: string, prev: TensorSpec[]) => [...prev, parseTensorSpec(v)];

async function withStack<T>(opts: { nats?: string }, controller: boolean, worker: boolean, fn: (s: Stack) => Promise<T>): Promise<T> {
  const [{ createLogger }, { startStack }] = await Promise.all([import('../runtime/log.js'), import('./local.js')]);
  const log = createLogger({ level: env.logLevel });
  const stack = await startStack({ log, natsUrl: opts.nats ?? env.natsUrl ?? 'nats://127.0.0.1:4222', dataDir: env.dataDir, controller, worker, name: 'infaas-cli', access: access() });
  try { return await fn(stack); } finally { await stack.stop(); }
}

/** A registry client on a stack's connection. */
async function registryOf(s: Stack): Promise<RegistryClient> {
  const registry = await import('../runtime/client/registry-client.js');
  return new registry.RegistryClient(s.nc, s.stores);
}

/**
 * Serving ends with the first SIGINT/SIGTERM (or `until`): `stop` then runs under the stop deadline
 * and the process exits, reachable bus or not; a second signal exits at once (runtime/stopping.ts).
 */
async function serveUntilStopped(log: Logger, stop: () => Promise<void>, until?: Promise<string>): Promise<void> {
  const why = await Promise.race([stopSignal(), ...(until ? [until] : [])]);
  print(`${why}: stopping`);
  await exitAfterStop(stop, { log });
}

const program = new Command('infaas').description('Model-less inference serving on NATS').showHelpAfterError()
  .option('--credentials <path>', "NATS credentials: a file (ours, or a .creds file) or a directory of <role>.json files (default on loopback: the data directory's)");

/** Credentials and TLS trust from --credentials and the environment (docs/security.md). */
function access(): NatsAccess {
  const file = program.opts<{ credentials?: string }>().credentials;
  return { ...env.access, ...(file ? { credentials: resolve(file) } : {}) };
}

program.command('up')
  .description('start the local NATS store, registrar and profiler; register the built-in zoo; print its variants')
  .option('-p, --port <port>', 'NATS port for the embedded server', parsePort, env.natsPort)
  .option('--once', 'exit after printing the table instead of serving')
  .option('--quick', 'shorter profiling (fewer runs, 500 validation samples): for a fast look')
  .option('--models <names>', 'register only these zoo models (comma-separated)', (v) => v.split(','))
  .option('--policy <name>', policyHelp, parsePolicy, 'infaas')
  .option('--max-payload <size>', 'largest message the embedded server takes, headers included, e.g. 16MiB (default 8MiB; bigger tensors go by reference through the Object Store: docs/query.md, "Big tensors")', parseMaxPayload)
  .action(async (o: { port: number; once?: boolean; quick?: boolean; models?: string[]; policy: string; maxPayload?: number }) => {
    const [{ createLogger }, { startStack }, { credentialsDir }, { registrationProgress }, { registerZoo }, { runDemo }, { QueryClient }] = await Promise.all([
      import('../runtime/log.js'), import('./local.js'), import('../runtime/bus/auth.js'), import('./progress.js'), import('./zoo.js'), import('./demo.js'), import('../runtime/client/query-client.js'),
    ]);
    const log = createLogger({ level: env.logLevel });
    const started = Date.now();
    const { policy, replicationOnly, batching, serving } = policyOptions(o.policy);
    const stack = await startStack({
      log, dataDir: env.dataDir, port: o.port, controller: true, worker: true, name: 'infaas-up', ...(policy ? { policy } : {}),
      // The fixed-variant baselines' worker replicates only (no switch to another variant); clipper's also batches by AIMD.
      ...(Object.keys(serving).length > 0 ? { serving } : {}),
      access: access(), auth: env.natsAuth, ...(env.natsTls ? { tls: env.natsTls } : {}), ...(o.maxPayload ? { maxPayload: o.maxPayload } : {}),
      profiler: { hardwareClass: env.hardwareClass, measure: o.quick ? { minRuns: 10, minTimeMs: 30, maxValidationSamples: 500 } : {} },
    });
    print(`NATS ${stack.server?.reused ? 'reused' : 'started'} at ${stack.url} (JetStream store: ${env.dataDir}/nats; max payload ${stack.server?.maxPayload ?? stack.nc.info?.max_payload} bytes)`);
    if (policy) print(`selection policy: ${o.policy} (baseline)${replicationOnly ? '; worker autoscaling: replication only' : ''}${batching !== 'work-conserving' ? `; batching: ${batching}` : ''}`);
    if (stack.server?.authRequired) print(`access control on: credentials per role in ${credentialsDir(env.dataDir)}; the nats CLI needs them: nats $(node bin/infaas.js credentials --nats-flags) ... (docs/security.md)`);
    // Armed now, so a Ctrl-C while the zoo registers stops the stack (and the embedded server) too.
    const stopped = serveUntilStopped(log, () => stack.stop());
    try {
      const client = await registryOf(stack);
      const progress = registrationProgress();
      const outcomes = await registerZoo(client, { onEvent: progress.onEvent, only: o.models }).finally(() => progress.done());
      for (const z of outcomes) print(`${z.name}: ${z.outcome}`);
      const infos: ModelInfo[] = [];
      for (const m of await client.models()) infos.push(await client.info(m.name));
      print('');
      print(modelsTable(infos.map((i) => i.model)));
      print('');
      print(variantsTable(infos));
      print(`\n${infos.reduce((n, i) => n + i.variants.length, 0)} variants of ${infos.length} models; took ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (stack.dispatcher && stack.worker) {
        print('\nModel-less selection: the same held-out digits, task only, different objectives (client-side latency):\n');
        // Each model's best measured accuracy on this worker's class.
        const accuracies = infos.map((i) => Math.max(0, ...i.variants.map((v) => v.profiles[stack.worker!.hardwareClass]?.accuracy ?? 0))).filter((a) => a > 0);
        if (accuracies.length > 0) print(await runDemo(new QueryClient(stack.nc), accuracies));
        print('');
      }
      if (stack.worker) {
        const example = infos.flatMap((i) => i.variants).find((v) => v.maxBatch > 1)?.id ?? '<model>.<variant>';
        print(`worker ${stack.worker.id} (${stack.worker.hardwareClass}) is serving: infaas workers -s ${stack.url}`);
        print(`  load a variant:  nats req infaas.worker.${stack.worker.id}.load '{"variant":"${example}"}' -s ${stack.url}`);
      }
      if (!o.once) {
        print(`serving: follow events with  nats sub 'infaas.events.>' -s ${stack.url}   (Ctrl-C to stop)`);
        await stopped;
      }
    } finally {
      await stack.stop();
    }
  });

program.command('nats')
  .description('run only the embedded NATS server with JetStream (foreground)')
  .option('-p, --port <port>', 'port', parsePort, env.natsPort)
  .option('--max-payload <size>', 'largest message the server takes, headers included (default 8MiB)', parseMaxPayload)
  .action(async (o: { port: number; maxPayload?: number }) => {
    const [{ createLogger }, { stackAccess }, { ensureLocalCredentials }] = await Promise.all([import('../runtime/log.js'), import('./local.js'), import('../runtime/bus/auth.js')]);
    const log = createLogger({ level: env.logLevel === 'warn' ? 'info' : env.logLevel });
    const { startLocalNats } = await import('../runtime/bus/local-nats.js');
    const s = await startLocalNats({
      storeDir: `${env.dataDir}/nats`, port: o.port, log, connect: stackAccess({ dataDir: env.dataDir, access: access(), tls: env.natsTls }, 'operator', 'nats://127.0.0.1').options,
      ...(env.natsAuth ? { auth: ensureLocalCredentials(env.dataDir) } : {}), ...(env.natsTls ? { tls: env.natsTls } : {}),
      ...(o.maxPayload ? { maxPayload: o.maxPayload } : {}),
    });
    print(`NATS at ${s.url}${s.reused ? ' (already running)' : ''}, max payload ${s.maxPayload} bytes; Ctrl-C to stop`);
    await serveUntilStopped(log, () => s.stop());
  });

program.command('controller').description('run the controller actors (registrar, dispatcher, optionally the VM-autoscaler) against a NATS server')
  .option('-s, --nats <url>', 'NATS server URL', env.natsUrl ?? 'nats://127.0.0.1:4222')
  .option('--workers <class>', 'autoscale workers of this hardware class (VM-autoscaler; default: off)')
  .option('--worker-threads <n>', 'threads of each worker it starts locally', parsePositive, 1)
  .option('--min-workers <n>', 'never fewer workers of the class', (v) => Number(v), 1)
  .option('--max-workers <n>', 'never more workers of the class', parsePositive, 8)
  .option('--start-command <sh>', 'start workers with this command instead of local processes (env: INFAAS_WORKER_ID, INFAAS_HARDWARE_CLASS, INFAAS_NATS_URL)')
  .option('--stop-command <sh>', 'stop a worker started by --start-command (env: INFAAS_WORKER_ID)')
  .option('--policy <name>', `${policyHelp}; the workers it starts locally get the policy's worker flags (fixed: --replication-only; clipper: --replication-only --batching aimd); --start-command workers need them too`, parsePolicy, 'infaas')
  .action(async (o: { nats: string; workers?: string; workerThreads: number; minWorkers: number; maxWorkers: number; startCommand?: string; stopCommand?: string; policy: string }) => {
    if (Boolean(o.startCommand) !== Boolean(o.stopCommand)) throw new InvalidArgumentError('--start-command and --stop-command go together');
    const [{ createLogger }, { startStack }, { CommandProvisioner, LocalProvisioner }, { startVmAutoscaler }] = await Promise.all([
      import('../runtime/log.js'), import('./local.js'), import('./provisioners.js'), import('../actors/vm-autoscaler/index.js'),
    ]);
    const log = createLogger({ level: env.logLevel === 'warn' ? 'info' : env.logLevel });
    const { policy, workerArgs } = policyOptions(o.policy);
    const stack = await startStack({ log, natsUrl: o.nats, dataDir: env.dataDir, controller: true, worker: false, name: 'infaas-controller', access: access(), ...(policy ? { policy } : {}) });
    let vm: VmAutoscaler | undefined;
    let provisioner: Provisioner | undefined;
    if (o.workers) {
      provisioner = o.startCommand
        ? new CommandProvisioner({ startCommand: o.startCommand, stopCommand: o.stopCommand!, natsUrl: o.nats, log })
        : new LocalProvisioner({ natsUrl: o.nats, threads: o.workerThreads, log, workerArgs });
      vm = await startVmAutoscaler({
        nc: stack.nc, stores: stack.stores, log, controllerId: stack.registrar!.id, provisioner, classes: [o.workers],
        settings: { minWorkers: o.minWorkers, maxWorkers: o.maxWorkers },
      });
    }
    print(`controller connected to ${o.nats}${o.workers ? `; autoscaling ${o.workers} workers (${o.minWorkers}-${o.maxWorkers})` : ''}${policy ? `; selection policy ${o.policy}` : ''}; Ctrl-C to stop`);
    await serveUntilStopped(log, async () => {
      // Workers this controller started get the drain allowance to exit (they are bounded too).
      const drain = new StopBudget(STOP_DRAIN_MS, log);
      if (vm) await drain.step('vm-autoscaler stop', () => vm!.stop(), STOP_BUS_MS);
      if (provisioner) await drain.step('provisioned workers stop', () => provisioner!.close());
      await stack.stop();
    });
  });

program.command('worker').description('run a worker (serving, variant generator, profiler) against a NATS server')
  .option('-s, --nats <url>', 'NATS server URL', env.natsUrl ?? 'nats://127.0.0.1:4222')
  .option('--hardware-class <class>', 'hardware class this worker profiles for (default cpu-<threads>t)', env.hardwareClass)
  .option('--threads <n>', 'threads this worker may use (default: all cores)', parsePositive)
  .option('--price <dollars>', 'hourly price of this worker (default: $0.048 per thread-hour)', parseNonNegative)
  .option('--memory-mb <mb>', 'memory instances may reserve (default: half the machine)', parsePositive)
  .option('--id <id>', 'worker id (default: a fresh one; provisioners pass theirs)', env.workerId)
  .option('--replication-only', "the model-autoscaler replicates but never switches variants (the fixed-variant baselines' worker)")
  .option('--batching <mode>', `batch sizing: work-conserving (up to the max batch) or aimd (Clipper's adaptive cap; the clipper baseline's worker)`, parseBatching, 'work-conserving')
  .action(async (o: { nats: string; hardwareClass?: string; threads?: number; price?: number; memoryMb?: number; id?: string; replicationOnly?: boolean; batching: BatchingMode }) => {
    const [{ createLogger }, { startStack }] = await Promise.all([import('../runtime/log.js'), import('./local.js')]);
    const log = createLogger({ level: env.logLevel === 'warn' ? 'info' : env.logLevel });
    let stopped!: () => void;
    const drained = new Promise<string>((resolve) => { stopped = () => resolve('drained'); });
    const stack = await startStack({
      log, natsUrl: o.nats, dataDir: env.dataDir, controller: false, worker: true, name: 'infaas-worker', access: access(),
      profiler: { hardwareClass: o.hardwareClass, threads: o.threads, ...(o.id ? { workerId: o.id } : {}) },
      serving: {
        pricePerHour: o.price, memoryBytes: o.memoryMb ? o.memoryMb * 1048576 : undefined, onStopped: () => stopped(),
        ...servingFor(o.replicationOnly, o.batching),
      },
    });
    print(`worker ${stack.worker!.id} (${stack.worker!.hardwareClass}) connected to ${o.nats}; Ctrl-C to stop`);
    await serveUntilStopped(log, () => stack.stop(), drained);
  });

program.command('register <file>')
  .description('upload an ONNX model and register it (waits for variants and profiles); inputs and outputs are read from the file')
  .requiredOption('--name <name>', 'model name (architecture), unique')
  .requiredOption('--task <task>', 'task, e.g. digit-classification')
  .requiredOption('--dataset <dataset>', 'dataset the model was trained on')
  .option('--input <spec>', "override what the file says of an input: name:dtype:dims, e.g. image:float32:?x1x28x28, or name:dtype: for a scalar (repeatable; all or none)", collect, [])
  .option('--output <spec>', 'override what the file says of an output, as --input (repeatable; all or none)', collect, [])
  .option('--shape <input=dims>', 'a size to profile at, one sample (batch 1): x=1x3x640x640; several inputs: a=...,b=... (repeatable: several sizes); needed when inputs have dynamic sizes and no validation set fixes them', (v: string, prev: ProfileShape[]) => [...prev, parseShapeOption(v)], [] as ProfileShape[])
  .option('--batch-axis <name=axis>', "an input or output's batch axis where the file's dimension names do not say: h=1, or scale=none (repeatable)", (v: string, prev: Record<string, number | null>) => parseBatchAxisOption(v, prev), {} as Record<string, number | null>)
  .option('--metric <metric>', 'how accuracy is measured: top1, top5, ctc (label strings, charset in the validation set), fidelity[:argmax|iou|cosine][@threshold] (agreement with the original model, no labels) (default: from the validation set\'s labels)', parseMetricOption)
  .option('--validation <file>', 'validation set file (MessagePack; build one with `infaas validation-set`; see docs/registry.md)')
  .option('--declared-accuracy <fraction>', 'declared accuracy in [0,1]: without a validation set, or with --metric fidelity (variants then get declared x fidelity)', (v) => Number(v))
  .option('--submitter <who>', 'who registers it', process.env.USER ?? 'unknown')
  .option('-s, --nats <url>', 'NATS server URL')
  .action(async (file: string, o: { name: string; task: string; dataset: string; input: TensorSpec[]; output: TensorSpec[]; shape: ProfileShape[]; batchAxis: Record<string, number | null>; metric?: Metric; validation?: string; declaredAccuracy?: number; submitter: string; nats?: string }) => {
    const { registrationProgress } = await import('./progress.js');
    await withStack(o, false, false, async (stack) => {
      const client = await registryOf(stack);
      const object = await client.upload(readFileSync(file), basename(file));
      const validation = o.validation ? await client.upload(readFileSync(o.validation), basename(o.validation)) : undefined;
      const progress = registrationProgress();
      try {
        const info = await client.register({
          name: o.name, task: o.task, dataset: o.dataset, framework: 'onnx', object, submitter: o.submitter,
          ...(o.input.length > 0 ? { inputs: o.input } : {}), ...(o.output.length > 0 ? { outputs: o.output } : {}),
          ...(o.shape.length > 0 ? { shapes: o.shape } : {}), ...(Object.keys(o.batchAxis).length > 0 ? { batchAxes: o.batchAxis } : {}),
          ...(o.metric ? { metric: o.metric } : {}),
          ...(validation ? { validation: { object: validation } } : {}), ...(o.declaredAccuracy !== undefined ? { declaredAccuracy: o.declaredAccuracy } : {}),
        }, { onEvent: progress.onEvent });
        progress.done();
        print(variantsTable([info]));
        for (const s of info.model.skipped ?? []) print(`not generated: ${s.kind}: ${s.reason}`);
        if (info.model.batched === false) print(`served unbatched: ${info.model.unbatchedReason ?? 'its batch axes could not be established'}`);
      } finally {
        progress.done();
        await client.deleteUpload(object);
        if (validation) await client.deleteUpload(validation);
      }
    });
  });

program.command('models').description('list registered models')
  .option('--task <task>', 'only this task').option('-s, --nats <url>', 'NATS server URL')
  .action(async (o: { task?: string; nats?: string }) => withStack(o, false, false, async (s) => print(modelsTable(await (await registryOf(s)).models(o.task)))));

program.command('info <name>').description("show a model's variants and their profiles")
  .option('-s, --nats <url>', 'NATS server URL')
  .action(async (name: string, o: { nats?: string }) => withStack(o, false, false, async (s) => print(variantsTable([await (await registryOf(s)).info(name)]))));

program.command('unregister <name>').description('remove a model, its variants, profiles and files')
  .option('-s, --nats <url>', 'NATS server URL')
  .action(async (name: string, o: { nats?: string }) => withStack(o, false, false, async (s) => {
    const r = await (await registryOf(s)).unregister(name);
    print(`removed ${name}: ${r.removed.variants} variants, ${r.removed.profiles} profiles, ${r.removed.objects} files`);
  }));

program.command('query')
  .description('send model-less queries (a zoo digit by default, or your inputs) and show what served them and what came back')
  .option('--task <task>', 'what to do (model-less)', ZOO_TASK)
  .option('--model <name>', 'a specific model instead of a task')
  .option('--variant <id>', 'a specific variant instead of a task')
  .option('--latency <ms>', 'latency objective in ms', (v) => Number(v), 100)
  .option('--accuracy <fraction>', 'minimum accuracy in [0,1]', (v) => Number(v))
  .option('--max-cost <dollars>', 'cost ceiling per query', (v) => Number(v))
  .option('--digit <n>', 'which held-out zoo digit to send', (v) => Number(v), 0)
  .option('--inputs <file>', "JSON file {name: {dtype, shape, data: [numbers]}} instead of a zoo digit; numbers are sent as each input's dtype (default: the model's)")
  .option('--input <name=@file>', "an input's raw little-endian bytes from a file: name=@file[:dtype[:dims]], e.g. image=@img.bin:float32:1x3x640x640 (dims may hold one ?; dtype and dims default to the model's) (repeatable)", parseRawInput, [] as RawInput[])
  .option('--count <n>', 'send this many (digits n, n+1, ...) and summarise', parsePositive, 1)
  .option('--wait <s>', 'keep retrying retryable errors (INSTANCE_LOADING, NO_CAPACITY, ...) after their retryAfterMs for up to this long', (v) => parseNonNegative(v), 30)
  .option('--out <file>', 'write the outputs: .json (numbers), .bin (one output\'s raw bytes) or else MessagePack; with --count, file.<n>.ext')
  .option('--no-claim-check', 'never send tensors by reference through the Object Store: a query over the max payload fails with PAYLOAD_TOO_LARGE')
  .option('-s, --nats <url>', 'NATS server URL')
  .action(async (o: QueryFlags & { nats?: string }) => {
    const { runQueryCommand } = await import('./query-command.js');
    await withStack(o, false, false, (stack) => runQueryCommand(stack, o, print, (line) => process.stderr.write(`${line}\n`)));
  });

program.command('bench')
  .description('load a live system with labelled zoo digits (open loop at a Poisson rate or over a rate-over-time shape or trace, or closed loop; one query class or a mix) ' +
    'and report throughput, goodput, latency, errors, accuracy, the answers\' cost and the provisioned cost (docs/bench.md)')
  .option('--rate <q/s>', 'open loop: Poisson arrivals at this mean rate', (v) => positiveNumber(v))
  .option('--shape <name>', `open loop over one of the paper's load shapes (${shapeNames.join(', ')}), built over warmup + duration`)
  .option('--trace <file>', 'open loop over a rate-over-time trace: CSV "seconds,rate" lines or JSON [{t, rate}]; sets warmup + duration')
  .option('--rate-scale <x>', 'multiply the rates of --shape or --trace', (v) => positiveNumber(v))
  .option('--time-scale <k>', "stretch --trace's times by k", (v) => positiveNumber(v))
  .option('--concurrency <n>', 'closed loop: this many queries outstanding (the default load: 1)', parsePositive)
  .option('--duration <s>', `measured seconds (default ${benchDefaults.durationS}; with --trace, the trace's length less the warmup)`, (v) => positiveNumber(v))
  .option('--warmup <s>', `seconds before the measurement, excluded from the overall (default ${benchDefaults.warmupS})`, parseNonNegative)
  .option('--window <s>', `seconds per window of the per-window statistics (default ${benchDefaults.windowS})`, (v) => positiveNumber(v))
  .option('--seed <n>', `seed of the arrivals, the diurnal shape and the mix's draws (default ${benchDefaults.seed})`, parseSeed)
  .option('--task <task>', `model-less queries for this task (default ${ZOO_TASK})`)
  .option('--model <name>', 'a specific model instead of a task')
  .option('--variant <id>', 'a specific variant instead of a task')
  .option('--latency <ms>', `latency objective in ms: the SLO, and goodput at the client (default ${benchDefaults.latencyMs})`, (v) => positiveNumber(v))
  .option('--min-accuracy <fraction>', 'minimum accuracy in [0,1]', parseFraction)
  .option('--mix <file>', 'query classes, JSON [{name?, weight?, task | model | variant, latencyMs, minAccuracy?}]: replaces --task, --model, --variant, --latency, --min-accuracy')
  .option('--no-retry', "turn off QueryClient's retries of retryable errors")
  .option('--csv <file>', 'write one CSV row per window, an "overall" row and one per class of a mix')
  .option('--json <file>', 'write the method, the windows, the overall, the classes and the fleet samples as JSON')
  .option('--charts <dir>', 'render the windows as charts (SVG and PNG) into this directory (docs/charts.md)')
  .option('-s, --nats <url>', 'NATS server URL')
  .action(async (o: BenchFlags & { csv?: string; json?: string; charts?: string; nats?: string }) => {
    const [{ benchOptions }, { kvFleet, profileAccuracy, runBench }, { progressLine, summaryTable, writeOutputs }, { machineLine }] = await Promise.all([
      import('../bench/live/options.js'), import('../bench/live/run.js'), import('../bench/live/report.js'), import('../bench/machine.js'),
    ]);
    const options = benchOptions(o, (path) => readFileSync(path, 'utf8'), ZOO_TASK);
    await withStack(o, false, false, async (stack) => {
      const tty = process.stderr.isTTY;
      const report = await runBench({
        nc: stack.nc, accuracyOf: profileAccuracy(stack.stores), fleet: kvFleet(stack.stores),
        onWindow: (w, inFlight) => process.stderr.write(tty ? `\r\x1b[K${progressLine(w, inFlight)}` : `${progressLine(w, inFlight)}\n`),
      }, options);
      if (tty) process.stderr.write('\n');
      print(summaryTable(report));
      writeOutputs(report, { csv: o.csv, json: o.json }, { command: ['infaas', ...process.argv.slice(2)].join(' '), machine: machineLine() });
      if (o.charts) {
        // Loaded only here: vega and the PNG renderer are heavy for every other command.
        const { fromBenchWindows, renderCharts } = await import('../bench/charts.js');
        const load = options.load.kind === 'trace' ? options.load.trace.description : options.load.kind === 'open' ? `Poisson at ${options.load.rate} q/s` : `${options.load.concurrency} outstanding`;
        const r = await renderCharts([fromBenchWindows('live', report.windows, options.latencyMs)], `infaas bench: ${load}`, o.charts);
        print(`charts: ${r.files.length} files in ${o.charts}${r.note ? ` (${r.note})` : ''}`);
      }
    });
  });

program.command('workers').alias('status').description('list live workers and their instances with their states (from KV)')
  .option('-s, --nats <url>', 'NATS server URL')
  .action(async (o: { nats?: string }) => withStack(o, false, false, async (s) => {
    const { kvValues } = await import('../runtime/bus/store.js');
    const read = async <T>(kv: typeof s.stores.workers) => [...(await kvValues<T>(kv)).values()];
    const workers = await read<WorkerRecord>(s.stores.workers);
    if (workers.length === 0) { print('no workers (start one with: infaas worker -s URL)'); return; }
    print(workersTable(workers, await read<InstanceRecord>(s.stores.instances)));
  }));

program.command('zoo').description('register the built-in zoo on a running system')
  .option('-s, --nats <url>', 'NATS server URL')
  .action(async (o: { nats?: string }) => withStack(o, false, false, async (s) => {
    const [{ registrationProgress }, { registerZoo }] = await Promise.all([import('./progress.js'), import('./zoo.js')]);
    const progress = registrationProgress();
    const outcomes = await registerZoo(await registryOf(s), { onEvent: progress.onEvent }).finally(() => progress.done());
    for (const z of outcomes) print(`${z.name}: ${z.outcome}`);
  }));

program.command('credentials [role]')
  .description(`show a role's credentials for the embedded server (roles: ${ROLES.join(', ')}; default operator)`)
  .option('--nats-flags', "print only the nats CLI's flags: nats $(node bin/infaas.js credentials --nats-flags) micro ls")
  .option('--server-config', "print the nats-server authorization block for every role's credentials (creating them if missing), for a server of your own")
  .action(async (role: string | undefined, o: { natsFlags?: boolean; serverConfig?: boolean }) => {
    const { credentialFile, credentialsDir, ensureLocalCredentials, readCredential, serverAuthConfig } = await import('../runtime/bus/auth.js');
    if (o.serverConfig) {
      process.stdout.write(serverAuthConfig(ensureLocalCredentials(env.dataDir)));
      return;
    }
    const r = role ?? 'operator';
    if (!(ROLES as readonly string[]).includes(r)) throw new InvalidArgumentError(`a role is one of ${ROLES.join(', ')}`);
    const file = credentialFile(env.dataDir, r as Role);
    if (!existsSync(file)) throw new Error(`no credentials in ${credentialsDir(env.dataDir)}: the first "infaas up" (or "infaas nats") creates them`);
    const c = readCredential(file)!;
    if (o.natsFlags) {
      print(`--user ${c.user} --password ${c.password} --inbox-prefix ${c.inboxPrefix}`);
      return;
    }
    print(`${r}: ${roleDescriptions[r as Role]}`);
    print(`  file:      ${file} (user ${c.user}, replies under ${c.inboxPrefix}.>)`);
    print(`  a process: INFAAS_NATS_CREDENTIALS=${file}  or  --credentials ${file}`);
    print(`  nats CLI:  nats $(node bin/infaas.js credentials ${r} --nats-flags) ...`);
  });

addValidationSetCommand(program, print);
addDeployCommand(program, print, env.dataDir, { id: env.workerId, hardwareClass: env.hardwareClass });

export async function main(argv = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (thrown) {
    // A refusal by the server reads as what was refused and why (runtime/bus/auth.ts).
    const err = (await import('../runtime/bus/auth.js')).permissionDenied(thrown) ?? thrown;
    if (err instanceof InfaasError) process.stderr.write(`error ${err.code}: ${err.message}\n`);
    else process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
