// A bare NATS protocol client for hostile-input tests: it sends header blocks and payloads byte
// for byte (nats.js refuses CR/LF in header values and checks header keys), and collects replies.
import { connect as tcpConnect, type Socket } from 'node:net';

export interface RawMsg { subject: string; reply?: string; headers?: Uint8Array; data: Uint8Array }

const CRLF = Buffer.from('\r\n');

export class RawNats {
  private buf = Buffer.alloc(0);
  private readonly pongs: (() => void)[] = [];
  private readonly subs = new Map<number, (m: RawMsg) => void>();
  private sid = 0;
  /** -ERR lines from the server (a protocol error closes the connection). */
  readonly errors: string[] = [];
  closed = false;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (b: Buffer) => { this.buf = Buffer.concat([this.buf, b]); this.parse(); });
    sock.on('close', () => { this.closed = true; for (const p of this.pongs.splice(0)) p(); });
    sock.on('error', () => { this.closed = true; });
  }

  static async connect(url: string): Promise<RawNats> {
    const u = new URL(url);
    const sock = tcpConnect({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const nc = new RawNats(sock);
    sock.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, headers: true, no_responders: true, name: 'raw-fuzz' })}\r\n`);
    await nc.flush();
    return nc;
  }

  subscribe(subject: string, onMsg: (m: RawMsg) => void): void {
    const sid = ++this.sid;
    this.subs.set(sid, onMsg);
    this.sock.write(`SUB ${subject} ${sid}\r\n`);
  }

  /** `headers` is the whole header block as sent (normally starting "NATS/1.0\r\n", ending "\r\n\r\n"). */
  publish(subject: string, data: Uint8Array, opts: { reply?: string; headers?: Uint8Array } = {}): void {
    const reply = opts.reply ? ` ${opts.reply}` : '';
    if (opts.headers) {
      const total = opts.headers.length + data.length;
      this.sock.write(Buffer.concat([Buffer.from(`HPUB ${subject}${reply} ${opts.headers.length} ${total}\r\n`), opts.headers, data, CRLF]));
    } else {
      this.sock.write(Buffer.concat([Buffer.from(`PUB ${subject}${reply} ${data.length}\r\n`), data, CRLF]));
    }
  }

  /** Resolves once the server has processed everything sent so far (PING/PONG), or the socket closed. */
  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => { this.pongs.push(resolve); this.sock.write('PING\r\n'); });
  }

  close(): void {
    this.sock.destroy();
  }

  private parse(): void {
    for (;;) {
      const eol = this.buf.indexOf(CRLF);
      if (eol < 0) return;
      const line = this.buf.subarray(0, eol).toString('latin1');
      const parts = line.split(' ');
      const op = parts[0]!.toUpperCase();
      if (op === 'MSG' || op === 'HMSG') {
        // MSG <subject> <sid> [reply] <size> | HMSG <subject> <sid> [reply] <hdr size> <total size>
        const headed = op === 'HMSG';
        const sizes = parts.slice(headed ? -2 : -1).map(Number);
        const total = sizes.at(-1)!;
        const start = eol + 2;
        if (this.buf.length < start + total + 2) return;
        const body = this.buf.subarray(start, start + total);
        const hdrLen = headed ? sizes[0]! : 0;
        const m: RawMsg = {
          subject: parts[1]!, data: Buffer.from(body.subarray(hdrLen)),
          ...(parts.length === (headed ? 6 : 5) ? { reply: parts[3]! } : {}),
          ...(headed ? { headers: Buffer.from(body.subarray(0, hdrLen)) } : {}),
        };
        this.buf = this.buf.subarray(start + total + 2);
        this.subs.get(Number(parts[2]))?.(m);
        continue;
      }
      this.buf = this.buf.subarray(eol + 2);
      if (op === 'PING') this.sock.write('PONG\r\n');
      else if (op === 'PONG') this.pongs.shift()?.();
      else if (op === '-ERR') this.errors.push(line);
    }
  }
}

/** The status code and header map of a received header block (values as latin1 text). */
export function parseHeaders(block: Uint8Array | undefined): { status?: number; headers: Map<string, string> } {
  const headers = new Map<string, string>();
  if (!block) return { headers };
  const lines = Buffer.from(block).toString('latin1').split('\r\n');
  const status = /^NATS\/1\.0 (\d+)/.exec(lines[0] ?? '')?.[1];
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  return { ...(status ? { status: Number(status) } : {}), headers };
}
