// Seeded mutation of messages for the fuzz test: values (wrong types, nasty strings, odd tensors),
// encodings (a MessagePack writer that can emit invalid UTF-8 and odd extension types), bytes
// (truncation, CR/LF/NUL/0xFF insertion) and raw NATS header blocks.

/** mulberry32: small, fast, good enough to make a failing run reproducible from its seed. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, chance: (p: number) => next() < p, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}
export type Rng = ReturnType<typeof prng>;

/** A MessagePack str whose bytes need not be UTF-8. */
export class RawStr { constructor(readonly bytes: Uint8Array) {} }
/** Bytes spliced into a MessagePack document as they are (reserved codes, odd extensions). */
export class RawPack { constructor(readonly bytes: Uint8Array) {} }

const NASTY_STRINGS = [
  '', ' ', 'nope\nnope', '\r\n', '\r', '\n', '\u0000', 'a\u0000b', '\r\nNats-Service-Error: forged', 'x'.repeat(5000),
  '*', '>', 'a.b', '..', 'infaas.query', '$SRV.PING', '\u2028', '\ud800', '\udfff', '\ufffd', 'é', '😀', '%s%n', '{"a":1}',
  '__proto__', 'constructor', '-1', 'NaN', '1e309', ' digit-classification', 'digit-classification\n',
];
const ODD_NUMBERS = [0, -0, -1, 1.5, -1.5, NaN, Infinity, -Infinity, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 5e-324];

export function nastyString(r: Rng): string | RawStr {
  if (r.chance(0.2)) return new RawStr(randomBytes(r, r.int(12) + 1, true));
  if (r.chance(0.15)) return String.fromCharCode(...Array.from({ length: r.int(8) + 1 }, () => r.int(256)));
  return r.pick(NASTY_STRINGS);
}

export function randomBytes(r: Rng, n: number, hostile = false): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = hostile ? r.pick([0x00, 0x0a, 0x0d, 0xff, 0xfe, 0xc0, 0xc1, 0x80, 0xed, 0xa0, r.int(256)]) : r.int(256);
  return b;
}

function deep(r: Rng, depth: number): unknown {
  let v: unknown = r.chance(0.5) ? 1 : 'x';
  for (let i = 0; i < depth; i++) v = r.chance(0.5) ? [v] : { a: v };
  return v;
}

function oddValue(r: Rng): unknown {
  switch (r.int(9)) {
    case 0: return r.pick(ODD_NUMBERS);
    case 1: return nastyString(r);
    case 2: return r.pick([true, false, null]);
    case 3: return [];
    case 4: return {};
    case 5: return deep(r, r.pick([3, 50, 400]));
    case 6: return Array.from({ length: r.pick([2, 1000, 20_000]) }, () => r.int(1000));
    case 7: return randomBytes(r, r.pick([0, 1, 100, 60_000]));
    default: return r.chance(0.5) ? new RawPack(Uint8Array.of(0xc1)) : new RawPack(Uint8Array.of(0xd6, 0xff, 0, 0, 0, 0));
  }
}

function oddTensor(r: Rng, t: Record<string, unknown>): Record<string, unknown> {
  const out = { ...t };
  switch (r.int(6)) {
    case 0: out.shape = r.pick([[-1, 1, 28, 28], [0, 1, 28, 28], [2 ** 31, 1, 28, 28], [1.5, 1, 28, 28], [], [1], [1, 1, 28, 28, 1, 1, 1, 1, 1], [NaN], [2 ** 53 + 2]]); break;
    case 1: out.dtype = r.pick(['float16', 'string', 'FLOAT32', 'int64', 'float64', 'uint8', '', 'float32\n']); break;
    case 2: out.data = randomBytes(r, r.pick([0, 1, 3, 3135, 3137, 60_000])); break;
    case 3: out.data = Array.from({ length: r.pick([0, 784, 785]) }, () => r.pick([0.5, NaN, 1e308, -1])); break;
    case 4: out.data = nastyString(r); break;
    default: out.shape = [r.int(4) + 1, 1, 28, 28]; break;
  }
  return out;
}

/** Applies 1-3 value-level mutations somewhere in the document (a fresh copy). */
export function mutateValue(r: Rng, doc: unknown): unknown {
  let v = structuredCloneSafe(doc);
  for (let n = r.int(3) + 1; n > 0; n--) v = mutateAt(r, v, 0);
  return v;
}

function mutateAt(r: Rng, v: unknown, depth: number): unknown {
  const isObj = v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof RawStr) && !(v instanceof RawPack);
  if (!isObj || depth > 6 || r.chance(0.25)) {
    if (isObj && 'dtype' in (v as object) && r.chance(0.7)) return oddTensor(r, v as Record<string, unknown>);
    return typeof v === 'string' && r.chance(0.6) ? nastyString(r) : oddValue(r);
  }
  if (Array.isArray(v)) {
    if (v.length === 0 || r.chance(0.2)) return [...v, oddValue(r)];
    const i = r.int(v.length);
    return v.map((x, j) => (j === i ? mutateAt(r, x, depth + 1) : x));
  }
  const o = { ...(v as Record<string, unknown>) };
  const keys = Object.keys(o);
  const roll = r.next();
  if (keys.length === 0 || roll < 0.1) {
    const s = nastyString(r);
    const k = r.chance(0.5) ? r.pick(['extra', '__proto__', 'constructor', 'id', 'inputs']) : s instanceof RawStr ? Buffer.from(s.bytes).toString('latin1') : s;
    Object.defineProperty(o, k, { value: oddValue(r), enumerable: true, writable: true, configurable: true });
  } else if (roll < 0.2) {
    delete o[r.pick(keys)];
  } else {
    const k = r.pick(keys);
    o[k] = mutateAt(r, o[k], depth + 1);
  }
  return o;
}

function structuredCloneSafe<T>(v: T): T {
  if (v instanceof Uint8Array) return new Uint8Array(v) as T;
  if (v instanceof RawStr || v instanceof RawPack || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(structuredCloneSafe) as T;
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, structuredCloneSafe(x)])) as T;
}

const te = new TextEncoder();

/** MessagePack, written by hand so that it can carry invalid UTF-8 strings and reserved codes. */
export function packLoose(v: unknown): Uint8Array {
  const out: number[] = [];
  const u = (n: number, bytes: number) => { for (let i = bytes - 1; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) & 0xff); };
  const head = (len: number, fix: number | undefined, fixMax: number, c8: number | undefined, c16: number, c32: number) => {
    if (fix !== undefined && len <= fixMax) out.push(fix | len);
    else if (c8 !== undefined && len < 256) { out.push(c8); u(len, 1); } else if (len < 65536) { out.push(c16); u(len, 2); } else { out.push(c32); u(len, 4); }
  };
  const write = (x: unknown): void => {
    if (x === null || x === undefined) out.push(0xc0);
    else if (x === true || x === false) out.push(x ? 0xc3 : 0xc2);
    else if (typeof x === 'number') {
      if (Number.isInteger(x) && x >= 0 && x < 128) out.push(x);
      else if (Number.isInteger(x) && x >= 0 && x < 2 ** 32) { out.push(0xce); u(x, 4); } else if (Number.isInteger(x) && x < 0 && x >= -32) out.push(0x100 + x);
      else { const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, x); out.push(0xcb, ...new Uint8Array(b.buffer)); }
    } else if (typeof x === 'string' || x instanceof RawStr) {
      const bytes = typeof x === 'string' ? te.encode(x) : x.bytes;
      head(bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      out.push(...bytes);
    } else if (x instanceof RawPack) out.push(...x.bytes);
    else if (x instanceof Uint8Array) { head(x.length, undefined, 0, 0xc4, 0xc5, 0xc6); for (const b of x) out.push(b); } else if (Array.isArray(x)) { head(x.length, 0x90, 15, undefined, 0xdc, 0xdd); x.forEach(write); } else {
      const entries = Object.entries(x as Record<string, unknown>);
      head(entries.length, 0x80, 15, undefined, 0xde, 0xdf);
      for (const [k, val] of entries) { write(k); write(val); }
    }
  };
  write(v);
  return Uint8Array.from(out);
}

/** JSON with bytes as number arrays and raw strings as latin1 text (byte mutations add invalid UTF-8). */
export function jsonLoose(v: unknown): Uint8Array {
  return te.encode(JSON.stringify(v, (_k, x: unknown) => {
    if (x instanceof Uint8Array) return Array.from(x);
    if (x instanceof RawStr) return Buffer.from(x.bytes).toString('latin1');
    if (x instanceof RawPack) return 'raw';
    return x;
  }) ?? 'null');
}

/** Byte-level damage: truncation, CR/LF/NUL/invalid UTF-8 insertion, garbage, emptiness. */
export function mutateBytes(r: Rng, b: Uint8Array): Uint8Array {
  const at = r.int(b.length + 1);
  switch (r.int(7)) {
    case 0: return b.subarray(0, at);
    case 1: return Uint8Array.from([...b.subarray(0, at), ...r.pick([[0x0d, 0x0a], [0x0a], [0x0d], [0x00], [0xff, 0xfe], [0xc3, 0x28], [0xed, 0xa0, 0x80]]), ...b.subarray(at)]);
    case 2: { const c = new Uint8Array(b); for (let i = r.int(4) + 1; i > 0 && c.length > 0; i--) c[r.int(c.length)] = r.int(256); return c; }
    case 3: return randomBytes(r, r.int(64), true);
    case 4: return new Uint8Array(0);
    case 5: return Uint8Array.from([...randomBytes(r, r.int(4) + 1, true), ...b]);
    default: return Uint8Array.from([...b, ...b.subarray(0, r.int(b.length + 1))]);
  }
}

export interface HeaderLine { key: string | Uint8Array; value: string | Uint8Array }

const latin1 = (s: string | Uint8Array) => (typeof s === 'string' ? Buffer.from(te.encode(s)) : Buffer.from(s));

/** A raw header block: status line, `Key: value` lines, blank line. */
export function headerBlock(lines: HeaderLine[], status = 'NATS/1.0'): Uint8Array {
  const parts: Buffer[] = [Buffer.from(`${status}\r\n`)];
  for (const l of lines) parts.push(latin1(l.key), Buffer.from(': '), latin1(l.value), Buffer.from('\r\n'));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

/** Damages some header lines: values and keys get CR/LF/NUL/non-UTF-8 bytes, lines appear or vanish, odd status lines. */
export function mutateHeaders(r: Rng, lines: HeaderLine[]): { lines: HeaderLine[]; status: string } {
  const out = lines.map((l) => ({ ...l }));
  const hostile = () => { const s = nastyString(r); return s instanceof RawStr ? s.bytes : s; };
  for (let n = r.int(3) + 1; n > 0; n--) {
    const roll = r.next();
    if (out.length > 0 && roll < 0.45) out[r.int(out.length)]!.value = hostile();
    else if (out.length > 0 && roll < 0.6) out[r.int(out.length)]!.key = r.pick(['A B', 'A\u0000B', 'A\nB', 'A\rB', 'Ä', 'Content-Type:', '']);
    else if (out.length > 0 && roll < 0.7) out.splice(r.int(out.length), 1);
    else out.push({ key: r.pick(['X-Fuzz', 'Nats-Service-Error', 'Nats-Service-Error-Code', 'Status', 'Infaas-Deadline']), value: hostile() });
  }
  const status = r.chance(0.1) ? r.pick(['NATS/1.0 503', 'NATS/1.0 408 Request Timeout', 'NATS/1.0 100 Idle Heartbeat', 'NATS/1.0 abc', 'NATS/1.0 404 No Messages']) : 'NATS/1.0';
  return { lines: out, status };
}

/**
 * Whether nats.js (2.29) throws BAD_HEADER when a handler reads `msg.headers` of this block: a key
 * with a character outside '!'..'~' (or a ':'), or a value with a CR or LF once split on CRLF.
 * `breaksReader`: the key's bad character is itself a CR or LF, which the error message then
 * carries into nats.js's own error reply, whose header check throws again out of the subscription
 * callback, ending the connection's reader.
 */
export function headerDecodeFailure(block: Uint8Array): { fails: boolean; breaksReader: boolean } {
  const lines = new TextDecoder().decode(block).split('\r\n').slice(1);
  let fails = false;
  let breaksReader = false;
  for (const s of lines) {
    const i = s.indexOf(':');
    if (!s || i < 0) continue;
    const key = s.slice(0, i);
    const badKey = [...key].find((c) => c.charCodeAt(0) < 33 || c.charCodeAt(0) > 126);
    if (badKey !== undefined) {
      fails = true;
      if (badKey === '\r' || badKey === '\n') breaksReader = true;
      break; // nats.js stops at the first bad line
    }
    if (/[\r\n]/.test(s.slice(i + 1).trim())) { fails = true; break; }
  }
  return { fails, breaksReader };
}
