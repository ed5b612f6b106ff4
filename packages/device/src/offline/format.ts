/**
 * The on-disk format of the offline buffer, version 1 (all integers big-endian).
 *
 *   header  = magic "FKOFFBUF" (8) | version u8 = 1 | salt (16) | firstSeq u64 | dropped u64 | hdrTag (28)
 *   record  = length u32 | seq u64 | sealed(length)
 *   sealed  = AES-256-GCM nonce(12) || ciphertext || tag(16) over
 *             plaintext = kindLen u8 | kind | cmdLen u8 | commandId | appendedAt u64 (ms) | payload
 *
 * Each file generation has its own random `salt`, and its AES key is
 * HKDF-SHA256(dataKey, salt, "fleetkey-offline-buffer/v1") (RFC 5869): every compaction starts a
 * new key, so random 96-bit nonces stay far below the 2^32 messages per key of
 * NIST SP 800-38D §8.3 however long the device lives.
 *
 * `hdrTag` is AES-256-GCM over an empty plaintext with the first 41 header bytes as AAD, so
 * `firstSeq` (which records were already delivered) and `dropped` cannot be edited.
 * A record's AAD is "fleetkey-offline/v1" | salt | seq: a record moved to another position
 * (reordered), copied (replayed), or spliced in from another file or generation fails its tag
 * or the sequence check. What no format without a trusted counter can detect: cutting records
 * off the end (indistinguishable from a crash before they were written) and rolling the whole
 * file back to an older copy.
 */
import { FleetkeyError, type DeviceMessageKind } from '@fleetkey/protocol';
import { AES_GCM_NONCE_BYTES, AES_GCM_TAG_BYTES } from '@fleetkey/crypto';

export const MAGIC = Buffer.from('FKOFFBUF', 'latin1');
export const FORMAT_VERSION = 1;
export const SALT_BYTES = 16;
const HEADER_SIGNED_BYTES = MAGIC.length + 1 + SALT_BYTES + 8 + 8;
export const HEADER_BYTES = HEADER_SIGNED_BYTES + AES_GCM_NONCE_BYTES + AES_GCM_TAG_BYTES;
export const FRAME_HEAD_BYTES = 4 + 8;
export const SEALED_OVERHEAD = AES_GCM_NONCE_BYTES + AES_GCM_TAG_BYTES;
export const KEY_INFO = 'fleetkey-offline-buffer/v1';
const RECORD_AAD_PREFIX = Buffer.from('fleetkey-offline/v1', 'latin1');

export const MESSAGE_KINDS: readonly DeviceMessageKind[] = ['diagnostics', 'telemetry', 'state', 'command_result', 'update'];

export interface Header {
  salt: Buffer;
  firstSeq: number;
  dropped: number;
}

export interface RecordBody {
  kind: DeviceMessageKind;
  commandId: string | undefined;
  appendedAt: number;
  payload: Buffer;
}

export const corrupt = (detail: string): FleetkeyError => new FleetkeyError('DECRYPT_FAILED', { detail: `offline buffer: ${detail}` });

/** The header bytes the header tag authenticates. */
export function headerSignedPart(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_SIGNED_BYTES);
  MAGIC.copy(b, 0);
  b[MAGIC.length] = FORMAT_VERSION;
  h.salt.copy(b, MAGIC.length + 1);
  b.writeBigUInt64BE(BigInt(h.firstSeq), MAGIC.length + 1 + SALT_BYTES);
  b.writeBigUInt64BE(BigInt(h.dropped), MAGIC.length + 1 + SALT_BYTES + 8);
  return b;
}

/** Splits a header read from disk; the caller checks the tag with the derived key. */
export function parseHeader(bytes: Buffer): { header: Header; signed: Buffer; tag: Buffer } {
  if (bytes.length < HEADER_BYTES) throw corrupt('file shorter than its header');
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('not an offline buffer file');
  if (bytes[MAGIC.length] !== FORMAT_VERSION) {
    throw new FleetkeyError('KEY_FILE_UNSUPPORTED', { detail: `offline buffer version ${String(bytes[MAGIC.length])}` });
  }
  const salt = Buffer.from(bytes.subarray(MAGIC.length + 1, MAGIC.length + 1 + SALT_BYTES));
  const firstSeq = safeNumber(bytes.readBigUInt64BE(MAGIC.length + 1 + SALT_BYTES), 'firstSeq');
  const dropped = safeNumber(bytes.readBigUInt64BE(MAGIC.length + 1 + SALT_BYTES + 8), 'dropped');
  return {
    header: { salt, firstSeq, dropped },
    signed: Buffer.from(bytes.subarray(0, HEADER_SIGNED_BYTES)),
    tag: Buffer.from(bytes.subarray(HEADER_SIGNED_BYTES, HEADER_BYTES)),
  };
}

function safeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${what} out of range`);
  return Number(v);
}

export function recordAad(salt: Buffer, seq: number): Buffer {
  const b = Buffer.alloc(RECORD_AAD_PREFIX.length + SALT_BYTES + 8);
  RECORD_AAD_PREFIX.copy(b, 0);
  salt.copy(b, RECORD_AAD_PREFIX.length);
  b.writeBigUInt64BE(BigInt(seq), RECORD_AAD_PREFIX.length + SALT_BYTES);
  return b;
}

export function frameHead(sealedLength: number, seq: number): Buffer {
  const b = Buffer.alloc(FRAME_HEAD_BYTES);
  b.writeUInt32BE(sealedLength, 0);
  b.writeBigUInt64BE(BigInt(seq), 4);
  return b;
}

export function readFrameHead(b: Buffer): { length: number; seq: number } {
  return { length: b.readUInt32BE(0), seq: safeNumber(b.readBigUInt64BE(4), 'seq') };
}

export function encodeBody(r: RecordBody): Buffer {
  const kind = Buffer.from(r.kind, 'latin1');
  const cmd = Buffer.from(r.commandId ?? '', 'latin1');
  const head = Buffer.alloc(1 + kind.length + 1 + cmd.length + 8);
  let o = head.writeUInt8(kind.length, 0);
  o += kind.copy(head, o);
  o = head.writeUInt8(cmd.length, o);
  o += cmd.copy(head, o);
  head.writeBigUInt64BE(BigInt(r.appendedAt), o);
  return Buffer.concat([head, r.payload]);
}

/** Parses an authenticated plaintext; anything unexpected means a buggy writer, reported as corrupt. */
export function decodeBody(b: Buffer): RecordBody {
  let o = 0;
  const take = (n: number): Buffer => {
    if (o + n > b.length) throw corrupt('record body truncated');
    const s = b.subarray(o, o + n);
    o += n;
    return s;
  };
  const kind = take(take(1)[0]!).toString('latin1') as DeviceMessageKind;
  if (!MESSAGE_KINDS.includes(kind)) throw corrupt('unknown message kind');
  const cmdLen = take(1)[0]!;
  const commandId = cmdLen === 0 ? undefined : take(cmdLen).toString('latin1');
  const appendedAt = safeNumber(take(8).readBigUInt64BE(0), 'appendedAt');
  return { kind, commandId, appendedAt, payload: Buffer.from(b.subarray(o)) };
}
