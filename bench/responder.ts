// The baseline a user would otherwise write: a NATS responder around one ONNX Runtime session
// (no selection, no batching). It takes the same MessagePack query body as infaas.query and answers
// {outputs} in MessagePack. Usage: tsx bench/responder.ts NATS_URL SUBJECT MODEL.onnx
import { readFileSync } from 'node:fs';
import { connect } from 'nats';
import { pack, unpack } from 'msgpackr';
import ort from 'onnxruntime-node';

const [url, subject, file] = process.argv.slice(2);
const session = await ort.InferenceSession.create(readFileSync(file), {
  graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
});
const nc = await connect({ servers: url, name: 'bench-responder' });
nc.subscribe(subject, {
  callback: async (_err, msg) => {
    const q = unpack(msg.data) as { inputs: { image: { shape: number[]; data: Uint8Array } } };
    const { shape, data } = q.inputs.image;
    const pixels = new Float32Array(new Uint8Array(data).buffer); // msg bytes may be unaligned: copy
    const out = await session.run({ image: new ort.Tensor('float32', pixels, shape) });
    const logits = out.logits;
    const bytes = new Uint8Array((logits.data as Float32Array).buffer.slice(0));
    msg.respond(pack({ outputs: { logits: { dtype: 'float32', shape: logits.dims, data: bytes } } }));
  },
});
process.send?.('ready');
process.on('SIGTERM', () => { void nc.drain().then(() => process.exit(0)); });
