/**
 * A minimal DER (ITU-T X.690 §10) writer and reader for the hot paths that build or read
 * structures by hand: the device-certificate template, CRLs with 100,000 entries, OCSP
 * responses and CSR framing. Everything else goes through @peculiar/asn1-*.
 */

/** Encodes a definite length (X.690 §8.1.3, DER §10.1: shortest form). */
export function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  if (length < 0x10000) return Buffer.from([0x82, length >> 8, length & 0xff]);
  if (length < 0x1000000) return Buffer.from([0x83, length >> 16, (length >> 8) & 0xff, length & 0xff]);
  return Buffer.from([0x84, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff]);
}

export function tlv(tag: number, ...content: readonly Uint8Array[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

export const seq = (...content: readonly Uint8Array[]): Buffer => tlv(0x30, ...content);
export const set = (...content: readonly Uint8Array[]): Buffer => tlv(0x31, ...content);
export const octetString = (value: Uint8Array): Buffer => tlv(0x04, value);
export const utf8String = (value: string): Buffer => tlv(0x0c, Buffer.from(value, 'utf8'));
export const printableString = (value: string): Buffer => tlv(0x13, Buffer.from(value, 'latin1'));
export const ia5String = (value: string): Buffer => tlv(0x16, Buffer.from(value, 'latin1'));
export const DER_NULL = Buffer.from([0x05, 0x00]);
export const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);
/** Context-specific constructed tag [n] (EXPLICIT wrapping). */
export const explicit = (n: number, ...content: readonly Uint8Array[]): Buffer => tlv(0xa0 | n, ...content);

/** BIT STRING with no unused bits (signatures, public keys). */
export const bitString = (value: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), value);

/** INTEGER from unsigned big-endian magnitude bytes: strips redundant zeros, keeps it positive (X.690 §8.3.2). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const body = trimmed.length === 0 ? Buffer.from([0]) : (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
  return tlv(0x02, body);
}

export function bigintMagnitude(value: bigint): Buffer {
  if (value < 0n) throw new RangeError('negative');
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  return Buffer.from(hex, 'hex');
}

export const smallInteger = (value: number): Buffer => unsignedInteger(bigintMagnitude(BigInt(value)));
export const enumerated = (value: number): Buffer => tlv(0x0a, Buffer.from([value]));

const oidCache = new Map<string, Buffer>();
/** OBJECT IDENTIFIER (X.690 §8.19); cached because the same few OIDs are written millions of times. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached !== undefined) return cached;
  const arcs = dotted.split('.').map((a) => BigInt(a));
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const bytes: number[] = [];
  const pushArc = (arc: bigint): void => {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let rest = arc >> 7n; rest > 0n; rest >>= 7n) chunk.unshift(Number(rest & 0x7fn) | 0x80);
    bytes.push(...chunk);
  };
  pushArc(arcs[0]! * 40n + arcs[1]!);
  for (const arc of arcs.slice(2)) pushArc(arc);
  const encoded = tlv(0x06, Buffer.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** GeneralizedTime in the RFC 5280 §4.1.2.5.2 form: YYYYMMDDHHMMSSZ, no fraction. */
export function generalizedTime(date: Date): Buffer {
  const s = `${date.getUTCFullYear()}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  return tlv(0x18, Buffer.from(s, 'latin1'));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
export function x509Time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError('date out of X.509 range');
  if (year >= 2050) return generalizedTime(date);
  const s = `${two(year % 100)}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(s, 'latin1'));
}

/** One TLV read from a buffer: `value` is a view, `raw` covers tag, length and value. */
export interface DerNode {
  readonly tag: number;
  readonly value: Buffer;
  readonly raw: Buffer;
}

export class DerError extends Error {}

/**
 * Reads one TLV at `offset` with DER's rules: single-byte tags only (all we parse), definite
 * shortest-form lengths, no overrun. Anything else is malformed.
 */
export function readTlv(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) throw new DerError('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tag');
  let length = buf[offset + 1]!;
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4) throw new DerError('indefinite or huge length');
    if (offset + 2 + n > buf.length) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[offset + 2 + i]!;
    if (length < 0x80 || (n > 1 && buf[offset + 2] === 0)) throw new DerError('non-minimal length');
    header += n;
  }
  const end = offset + header + length;
  if (end > buf.length) throw new DerError('value overruns buffer');
  return { tag, value: buf.subarray(offset + header, end), raw: buf.subarray(offset, end) };
}

/** Reads a whole buffer as exactly one TLV (no trailing bytes) with the expected tag. */
export function readExactly(buf: Buffer, tag: number): DerNode {
  const node = readTlv(buf, 0);
  if (node.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}`);
  if (node.raw.length !== buf.length) throw new DerError('trailing bytes');
  return node;
}

/** The children of a constructed node, in order. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let offset = 0; offset < node.value.length; ) {
    const child = readTlv(node.value, offset);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

/** Decodes an OBJECT IDENTIFIER's content octets to dotted form. */
export function decodeOid(value: Buffer): string {
  if (value.length === 0) throw new DerError('empty OID');
  const arcs: bigint[] = [];
  let acc = 0n;
  for (let i = 0; i < value.length; i++) {
    const b = value[i]!;
    if (acc === 0n && b === 0x80) throw new DerError('non-minimal OID arc');
    acc = (acc << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(acc);
      acc = 0n;
    } else if (i === value.length - 1) throw new DerError('truncated OID');
  }
  const first = arcs[0]!;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}
