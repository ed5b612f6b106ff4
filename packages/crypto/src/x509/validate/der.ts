// A deliberately small, strict DER reader for the certificate skeleton. We read the
// certificate ourselves (instead of re-encoding a parsed object) because signatures are
// over the exact tbsCertificate bytes and names must be compared as issued (RFC 5280 §4.1).

/** Thrown only inside this folder; validateChain turns it into a `malformed` result. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

export interface Tlv {
  /** The identifier octet (single-byte tags only; X.509 never needs high tag numbers). */
  readonly tag: number;
  /** The whole element, header included. */
  readonly raw: Buffer;
  /** The contents octets. */
  readonly value: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Reads one element at `offset`; definite, minimally encoded lengths only (X.690 §10.1). */
export function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new DerError('truncated header');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag number form');
  let len = buf[offset + 1] as number;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length');
    if (n > 4) throw new DerError('length too large');
    if (offset + 2 + n > buf.length) throw new DerError('truncated length');
    if (buf[offset + 2] === 0) throw new DerError('non-minimal length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    if (len < 0x80) throw new DerError('non-minimal length');
    header += n;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new DerError('truncated value');
  return { tag, raw: buf.subarray(offset, end), value: buf.subarray(offset + header, end) };
}

/** Reads exactly one element spanning the whole buffer (no trailing bytes). */
export function readSingle(buf: Buffer, tag?: number): Tlv {
  const tlv = readTlv(buf, 0);
  if (tlv.raw.length !== buf.length) throw new DerError('trailing data');
  if (tag !== undefined && tlv.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}`);
  return tlv;
}

/** The elements inside a constructed value. */
export function children(tlv: Tlv): Tlv[] {
  if ((tlv.tag & 0x20) === 0) throw new DerError('primitive element has no children');
  const out: Tlv[] = [];
  let off = 0;
  while (off < tlv.value.length) {
    const child = readTlv(tlv.value, off);
    out.push(child);
    off += child.raw.length;
  }
  return out;
}

export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) throw new DerError(`${what}: unexpected element`);
  return tlv;
}

export function decodeOid(tlv: Tlv): string {
  if (tlv.tag !== TAG.OID) throw new DerError('expected OID');
  const v = tlv.value;
  if (v.length === 0) throw new DerError('empty OID');
  // Arcs may be as large as a UUID (X.667 `2.25.<128-bit>`, Fleetkey's own arc): BigInt, with a
  // bound on the encoded length of one arc (20 octets ≥ 128 bits) so no input makes this unbounded.
  const arcs: bigint[] = [];
  let acc = 0n;
  let octets = 0;
  let fresh = true;
  for (const b of v) {
    // X.690 §8.19.2: the leading octet of a subidentifier must not be 0x80.
    if (fresh && b === 0x80) throw new DerError('non-minimal OID arc');
    if (++octets > 20) throw new DerError('OID arc too large');
    acc = (acc << 7n) | BigInt(b & 0x7f);
    fresh = (b & 0x80) === 0;
    if (fresh) {
      arcs.push(acc);
      acc = 0n;
      octets = 0;
    }
  }
  if (!fresh) throw new DerError('truncated OID');
  const first = arcs[0] as bigint;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/** INTEGER contents, checked for minimal two's-complement encoding (X.690 §8.3.2). */
export function integerBytes(tlv: Tlv): Buffer {
  if (tlv.tag !== TAG.INTEGER) throw new DerError('expected INTEGER');
  const v = tlv.value;
  if (v.length === 0) throw new DerError('empty INTEGER');
  if (v.length > 1) {
    const a = v[0] as number;
    const b = v[1] as number;
    if ((a === 0x00 && (b & 0x80) === 0) || (a === 0xff && (b & 0x80) !== 0)) {
      throw new DerError('non-minimal INTEGER');
    }
  }
  return v;
}

/** A small non-negative INTEGER as a number (pathLenConstraint, versions). */
export function smallUint(tlv: Tlv): number {
  const v = integerBytes(tlv);
  if (((v[0] as number) & 0x80) !== 0) throw new DerError('negative INTEGER');
  if (v.length > 4) throw new DerError('INTEGER too large');
  return v.reduce((acc, b) => acc * 256 + b, 0);
}

export function decodeBoolean(tlv: Tlv): boolean {
  if (tlv.tag !== TAG.BOOLEAN || tlv.value.length !== 1) throw new DerError('bad BOOLEAN');
  const b = tlv.value[0] as number;
  // X.690 §11.1: DER encodes TRUE as 0xFF only.
  if (b !== 0x00 && b !== 0xff) throw new DerError('non-DER BOOLEAN');
  return b === 0xff;
}

/** BIT STRING contents as (unusedBits, bytes). */
export function bitString(tlv: Tlv): { unused: number; bytes: Buffer } {
  if (tlv.tag !== TAG.BIT_STRING || tlv.value.length === 0) throw new DerError('bad BIT STRING');
  const unused = tlv.value[0] as number;
  if (unused > 7 || (tlv.value.length === 1 && unused !== 0)) throw new DerError('bad BIT STRING');
  return { unused, bytes: tlv.value.subarray(1) };
}

/** UTCTime / GeneralizedTime in the restricted forms of RFC 5280 §4.1.2.5.1–2. */
export function decodeTime(tlv: Tlv): Date {
  const s = tlv.value.toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) throw new DerError('bad UTCTime');
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tlv.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) throw new DerError('bad GeneralizedTime');
    year = Number(m[1]);
  } else {
    throw new DerError('expected Time');
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) throw new DerError('bad Time');
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (back.getUTCDate() !== d) throw new DerError('bad Time');
  return back;
}
