// An ONNX Runtime session in its own worker thread, so that a run never blocks this event loop
// (heartbeats, replies and the batcher's timers keep going while a batch computes).
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DType } from '../../schemas/tensor.js';
import type { TypedArray } from '../bus/codec.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import type { SessionConfig } from './onnx-session.js';
import { projectFile } from '../project-files.js';

/** A tensor as the session sees it: a typed array and its dimensions. */
export interface Feed {
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

export interface RunResult {
  outputs: Record<string, Feed>;
  /** Time of session.run inside the thread, without the hops to and from it. */
  ms: number;
  /** The thread's whole time on the run (tensor conversion included), without queueing or hops. */
  busyMs?: number;
}

// The protocol with session-thread.mjs.
type FromThread =
  | { type: 'opened'; loadMs: number; inputNames: string[]; outputNames: string[] }
  | { type: 'result'; seq: number; ms: number; busyMs: number; outputs: Record<string, Feed> }
  | { type: 'error'; seq?: number; message: string };

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (err: Error) => void;
}

// From the project root: the .mjs is not copied into dist/ (it is plain JavaScript, run as it is).
const THREAD_URL = pathToFileURL(projectFile('runtime', 'onnx', 'session-thread.mjs'));

/** A copy in a buffer of its own. Not data.slice(): on a Node Buffer that is a view, and transferring it would detach the caller's bytes. */
function copyOf<T extends TypedArray>(data: T): T {
  const Ctor = (data instanceof Uint8Array ? Uint8Array : data.constructor) as new (n: number) => T;
  const copy = new Ctor(data.length);
  (copy as Uint8Array).set(data as Uint8Array);
  return copy;
}

/** How long a closing thread may take to finish its current run before it is terminated. */
const CLOSE_TIMEOUT_MS = 10_000;

export class ThreadedSession {
  private readonly pending = new Map<number, Pending>();
  private readonly exitListeners: ((err?: Error) => void)[] = [];
  private nextSeq = 1;
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    readonly loadMs: number,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {
    worker.on('message', (msg: FromThread) => this.settle(msg));
    let threadError: Error | undefined;
    worker.on('error', (err) => { threadError = err; });
    worker.on('messageerror', (err) => { threadError = err; });
    worker.on('exit', (code) => {
      if (this.closed) return;
      this.closed = true;
      const err = threadError ?? new Error(`session thread exited with code ${code}`);
      this.rejectAll(`session thread died: ${err.message}`);
      for (const cb of this.exitListeners) cb(err);
    });
    worker.unref();
  }

  /** Starts a thread and opens the model in it; any failure is MODEL_LOAD_FAILED. The bytes are copied, never detached. */
  static async open(bytes: Uint8Array, config: SessionConfig): Promise<ThreadedSession> {
    // execArgv [] keeps a parent's --import=tsx out of the thread: the .mjs needs no loader.
    const worker = new Worker(THREAD_URL, { execArgv: [] });
    const copy = copyOf(bytes);
    try {
      const opened = await new Promise<Extract<FromThread, { type: 'opened' }>>((resolve, reject) => {
        const onExit = (code: number) => reject(new Error(`session thread exited with code ${code} while loading`));
        worker.once('error', reject);
        worker.once('exit', onExit);
        worker.once('message', (msg: FromThread) => {
          worker.off('error', reject);
          worker.off('exit', onExit);
          if (msg.type === 'opened') resolve(msg);
          else reject(new Error(msg.type === 'error' ? msg.message : `unexpected ${msg.type} while loading`));
        });
        worker.postMessage({ type: 'open', bytes: copy, config: { ...config } }, [copy.buffer as ArrayBuffer]);
      });
      return new ThreadedSession(worker, opened.loadMs, opened.inputNames, opened.outputNames);
    } catch (err) {
      await worker.terminate();
      throw new InfaasError(ErrorCode.ModelLoadFailed, `cannot load the model: ${(err as Error).message}`);
    }
  }

  /**
   * Runs the session once. A feed whose typed array owns its whole buffer is transferred to the
   * thread and is detached (empty) here afterwards; any other feed is copied.
   */
  run(feeds: Record<string, Feed>): Promise<RunResult> {
    if (this.closed) return Promise.reject(new InfaasError(ErrorCode.InferenceFailed, 'session closed'));
    const seq = this.nextSeq++;
    const transfer: ArrayBuffer[] = [];
    const sent: Record<string, Feed> = {};
    for (const [name, f] of Object.entries(feeds)) {
      const owned = f.data.byteOffset === 0 && f.data.byteLength === f.data.buffer.byteLength
        && f.data.buffer instanceof ArrayBuffer && !transfer.includes(f.data.buffer);
      const data = owned ? f.data : copyOf(f.data);
      transfer.push(data.buffer as ArrayBuffer);
      sent[name] = { dtype: f.dtype, dims: [...f.dims], data };
    }
    return new Promise<RunResult>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ type: 'run', seq, feeds: sent }, transfer);
    });
  }

  /** Ends the thread; runs still outstanding reject with INFERENCE_FAILED "session closed". */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll('session closed');
    // The thread finishes the run it is in, releases the session and exits by itself: terminating
    // it in the middle of a native ORT run can abort the whole process (seen once in CI: SIGABRT).
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' });
    const fallback = setTimeout(() => { void this.worker.terminate(); }, CLOSE_TIMEOUT_MS);
    await exited;
    clearTimeout(fallback);
  }

  /** Called once if the thread dies on its own (not after close()); outstanding runs have been rejected by then. */
  onExit(cb: (err?: Error) => void): void {
    this.exitListeners.push(cb);
  }

  private settle(msg: FromThread): void {
    if (msg.type === 'opened' || msg.seq === undefined) return;
    const p = this.pending.get(msg.seq);
    if (!p) return;
    this.pending.delete(msg.seq);
    if (this.pending.size === 0) this.worker.unref();
    if (msg.type === 'result') p.resolve({ outputs: msg.outputs, ms: msg.ms, busyMs: msg.busyMs });
    else p.reject(new InfaasError(ErrorCode.InferenceFailed, msg.message));
  }

  private rejectAll(message: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    this.worker.unref();
    for (const p of all) p.reject(new InfaasError(ErrorCode.InferenceFailed, message));
  }
}
