// The infaas command line as a person runs it: a real process against a real server.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { zooModelBytes, zooValidationSet } from '../zoo/index.js';
import { startTestSystem, startTestWorker } from './helpers/system.js';
import { WorkerClient } from '../runtime/client/worker-client.js';
import { startDispatcher } from '../actors/dispatcher/index.js';
import { silentLogger } from '../runtime/log.js';

const BIN = new URL('../bin/infaas.js', import.meta.url).pathname;

function infaas(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('register, list, inspect and unregister from the command line', async (t) => {
  const sys = await startTestSystem(t);
  const dir = mkdtempSync(join(tmpdir(), 'infaas-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'm.onnx'), zooModelBytes('mlp-small'));
  writeFileSync(join(dir, 'val.msgpack'), zooValidationSet(100));
  const reg = await infaas(['register', join(dir, 'm.onnx'), '--name', 'cli-model', '--task', 'digit-classification', '--dataset', 'mnist',
    '--input', 'image:float32:?x1x28x28', '--output', 'logits:float32:?x10', '--validation', join(dir, 'val.msgpack'), '-s', sys.url]);
  t.equal(reg.code, 0, reg.stderr);
  t.match(reg.stdout, /cli-model\s+fp32-all-b8-t1-cpu/);
  t.match(reg.stdout, /registered with 4 profiled variants/);
  const models = await infaas(['models', '-s', sys.url]);
  t.match(models.stdout, /cli-model\s+digit-classification\s+registered\s+4/);
  const info = await infaas(['info', 'cli-model', '-s', sys.url]);
  t.match(info.stdout, /int8-all-b1-t1-cpu/);
  const bad = await infaas(['register', join(dir, 'm.onnx'), '--name', 'cli-model', '--task', 'digit-classification', '--dataset', 'mnist',
    '--input', 'image:float32:?x1x28x28', '--output', 'logits:float32:?x10', '--declared-accuracy', '0.5', '-s', sys.url]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /error DUPLICATE_MODEL: a model named "cli-model" is already registered/);
  const shape = await infaas(['register', 'x.onnx', '--name', 'y', '--task', 't', '--dataset', 'd', '--input', 'image:float99:?', '--output', 'o:float32:?', '-s', sys.url]);
  t.equal(shape.code, 1);
  t.match(shape.stderr, /name:dtype:dims/);
  const none = await infaas(['workers', '-s', sys.url]);
  t.match(none.stdout, /no workers/);
  const worker = await startTestWorker(t, sys, { monitor: { windowMs: 200 } });
  await new WorkerClient(sys.nc).load(worker.id, 'cli-model.fp32-all-b8-t1-cpu');
  const workers = await infaas(['workers', '-s', sys.url]);
  t.equal(workers.code, 0, workers.stderr);
  t.match(workers.stdout, new RegExp(`${worker.id}\\s+\\S+\\s+cpu-test\\s+ready\\s+1/2`), 'the worker, its class and reserved threads');
  t.match(workers.stdout, /cli-model\.fp32-all-b8-t1-cpu\s+active/, 'its instance and state');
  const dispatcher = await startDispatcher({ nc: sys.nc, stores: sys.stores, log: silentLogger, controllerId: 'cli' });
  t.teardown(() => dispatcher.stop());
  // A generous objective: this checks the command's output, not latency on a busy machine.
  const q = await infaas(['query', '--model', 'cli-model', '--latency', '5000', '--count', '3', '-s', sys.url]);
  t.equal(q.code, 0, q.stderr);
  t.match(q.stdout, new RegExp(`cli-model\\s+fp32-all-b8-t1-cpu\\s+${worker.id}\\s+cpu-test`), 'served by the loaded variant');
  t.match(q.stdout, /\d\/3 correct/);
  const infeasible = await infaas(['query', '--accuracy', '0.9999', '--latency', '1000', '-s', sys.url]);
  t.equal(infeasible.code, 1);
  t.match(infeasible.stderr, /error INFEASIBLE: .*objective 1000 ms.*Achievable: highest accuracy within 1000 ms/);
  await worker.stop();
  const gone = await infaas(['unregister', 'cli-model', '-s', sys.url]);
  t.match(gone.stdout, /removed cli-model: 4 variants, 4 profiles, 4 files/);
  const missing = await infaas(['info', 'cli-model', '-s', sys.url]);
  t.match(missing.stderr, /MODEL_NOT_FOUND/);
});

t.test('infaas up twice on one data directory registers once', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'infaas-up-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { INFAAS_DATA_DIR: dataDir };
  const first = await infaas(['up', '--once', '--quick', '--port', '-1', '--models', 'mlp-small'], env);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /mlp-small: registered/);
  t.match(first.stdout, /30 variants of 1 models/);
  t.match(first.stdout, /b1 p50\/p99 ms/);
  t.match(first.stdout, /worker worker-\S+ \(cpu-\d+t\) is serving/);
  t.match(first.stdout, /Model-less selection/, 'the demonstration workload ran');
  // Any answered count: on a busy machine a few of the 20 can miss the 50 ms objective (noted, not fatal).
  t.match(first.stdout, /loose objective, modest accuracy\s+< 50 ms, >= [\d.]+%\s+mlp-small\.\S+\s+[\d.]+\/[\d.]+\s+\d+\/\d+/, 'and was served');
  const second = await infaas(['up', '--once', '--quick', '--port', '-1', '--models', 'mlp-small'], env);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, /mlp-small: already registered/);
  t.match(second.stdout, /30 variants of 1 models/);
});
