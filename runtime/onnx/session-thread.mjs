// One ONNX Runtime session inside a worker thread (see threaded-session.ts for the protocol).
// Plain JavaScript: worker threads do not inherit a TypeScript loader registered with tsx's API.
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';

// The dtypes the wire carries; ORT names them the same way.
const CARRIED = new Set(['float32', 'float64', 'int8', 'uint8', 'int32', 'int64']);

/** @type {import('onnxruntime-node').InferenceSession | undefined} */
let session;
// Runs execute one after another so that each `ms` is the session's own time, not a share.
let queue = Promise.resolve();

parentPort.on('message', (msg) => {
  if (msg.type === 'open') void open(msg.bytes, msg.config);
  else if (msg.type === 'run') queue = queue.then(() => run(msg.seq, msg.feeds));
  // After the runs already queued: release the session and let the thread end on its own.
  else if (msg.type === 'close') queue = queue.then(() => shutdown());
});

async function shutdown() {
  try {
    await session?.release();
  } catch {
    // Nothing to report to: the parent has already rejected what was outstanding.
  }
  session = undefined;
  parentPort.close();
}

async function open(bytes, config) {
  try {
    if (session) throw new Error('this thread already holds a session');
    const t0 = performance.now();
    // The same options as createSession in onnx-session.ts.
    session = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: config.graphOptimizationLevel,
      intraOpNumThreads: config.intraOpThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      executionProviders: [config.executionProvider],
    });
    const loadMs = performance.now() - t0;
    parentPort.postMessage({ type: 'opened', loadMs, inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: messageOf(err) });
  }
}

async function run(seq, feeds) {
  const received = performance.now();
  try {
    if (!session) throw new Error('no session is open');
    const tensors = {};
    for (const [name, f] of Object.entries(feeds)) tensors[name] = new ort.Tensor(f.dtype, f.data, f.dims);
    const t0 = performance.now();
    const results = await session.run(tensors);
    const ms = performance.now() - t0;
    const outputs = {};
    const transfer = [];
    for (const [name, t] of Object.entries(results)) {
      if (!CARRIED.has(t.type)) throw new Error(`output ${name} is ${t.type}, which the wire does not carry`);
      // Transfer only a buffer the array owns whole (ORT's outputs do); otherwise send a copy.
      const owned = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength && !transfer.includes(t.data.buffer);
      const data = owned ? t.data : t.data.slice();
      transfer.push(data.buffer);
      outputs[name] = { dtype: t.type, dims: [...t.dims], data };
    }
    // busyMs: this thread's whole time on the run (tensors in and out too), for capacity planning.
    parentPort.postMessage({ type: 'result', seq, ms, busyMs: performance.now() - received, outputs }, transfer);
  } catch (err) {
    parentPort.postMessage({ type: 'error', seq, message: messageOf(err) });
  }
}

function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}
