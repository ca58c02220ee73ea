// An ONNX Runtime session on this thread's event loop, for variants whose runs take well under a
// millisecond: handing such a run to a session thread costs more than the run (two message hops
// and a thread wake-up, ~0.1-0.3 ms measured), and a run this short does not stall the loop.
import type { DType } from '../../schemas/tensor.js';
import type { TypedArray } from '../bus/codec.js';
import { ErrorCode, InfaasError } from '../../schemas/errors.js';
import { createSession, ort, type SessionConfig } from './onnx-session.js';
import type { Feed, RunResult } from './threaded-session.js';

const CARRIED = new Set<string>(['float32', 'float64', 'int8', 'uint8', 'int32', 'int64']);

export class InlineSession {
  private closed = false;

  private constructor(private readonly session: ort.InferenceSession, readonly loadMs: number) {}

  /** Opens the model on this thread; any failure is MODEL_LOAD_FAILED. */
  static async open(bytes: Uint8Array, config: SessionConfig): Promise<InlineSession> {
    const t0 = performance.now();
    try {
      return new InlineSession(await createSession(bytes, config), performance.now() - t0);
    } catch (err) {
      throw new InfaasError(ErrorCode.ModelLoadFailed, `cannot load the model: ${(err as Error).message}`);
    }
  }

  async run(feeds: Record<string, Feed>): Promise<RunResult> {
    if (this.closed) throw new InfaasError(ErrorCode.InferenceFailed, 'session closed');
    const t0 = performance.now();
    const tensors: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) tensors[name] = new ort.Tensor(f.dtype, f.data as never, f.dims);
    const t1 = performance.now();
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await this.session.run(tensors);
    } catch (err) {
      throw new InfaasError(ErrorCode.InferenceFailed, (err as Error).message);
    }
    const ms = performance.now() - t1;
    const outputs: Record<string, Feed> = {};
    for (const [name, t] of Object.entries(results)) {
      if (!CARRIED.has(t.type)) throw new InfaasError(ErrorCode.InferenceFailed, `output ${name} is ${t.type}, which the wire does not carry`);
      outputs[name] = { dtype: t.type as DType, dims: [...t.dims], data: t.data as TypedArray };
    }
    return { outputs, ms, busyMs: performance.now() - t0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }

  /** An inline session has no thread to lose. */
  onExit(): void {}
}
