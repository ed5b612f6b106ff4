/**
 * Reading and writing whole generations of the offline log (format: ./format.ts). Pure over
 * bytes except {@link replaceAtomically}; the OfflineBuffer keeps the state.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetkeyError, MQTT_LIMITS } from '@fleetkey/protocol';
import { aes256GcmDecrypt, aes256GcmEncrypt, zero } from '@fleetkey/crypto';
import { syncDir } from '../internal/secure-dir.js';
import {
  corrupt,
  decodeBody,
  encodeBody,
  frameHead,
  FRAME_HEAD_BYTES,
  HEADER_BYTES,
  headerSignedPart,
  parseHeader,
  readFrameHead,
  recordAad,
  SALT_BYTES,
  SEALED_OVERHEAD,
  type Header,
  type RecordBody,
} from './format.js';

/** Largest sealed record any version of this buffer writes: one MQTT packet's payload plus headers. */
const MAX_SEALED_BYTES = MQTT_LIMITS.maxPacketBytes + 1024;

/** Where one authenticated record sits in the file. */
export interface Entry {
  seq: number;
  offset: number;
  frameBytes: number;
}

export interface Generation {
  header: Header;
  /** The generation's AES key; the owner zeroes it when replaced. */
  key: Buffer;
  entries: Entry[];
  /** End of the last authentic record: the file length once a torn tail is cut. */
  end: number;
}

/**
 * Authenticates the header and every record of a log file. Stops (without error) at a torn
 * tail: a frame cut short, or the zeros some filesystems leave after a crash — neither can hold
 * an authentic record. Anything else that does not check out is refused.
 * @throws FleetkeyError DECRYPT_FAILED | KEY_FILE_UNSUPPORTED
 */
export function scanLog(bytes: Buffer, deriveKey: (salt: Buffer) => Buffer): Generation {
  const { header, signed, tag } = parseHeader(bytes);
  const key = deriveKey(header.salt);
  try {
    aes256GcmDecrypt(key, tag, signed);
  } catch (cause) {
    zero(key);
    throw new FleetkeyError('DECRYPT_FAILED', { detail: 'offline buffer: header does not authenticate (wrong key or tampered)', cause });
  }
  const entries: Entry[] = [];
  let offset = HEADER_BYTES;
  let expected = header.firstSeq;
  try {
    while (offset < bytes.length) {
      const rest = bytes.subarray(offset);
      if (rest.length < FRAME_HEAD_BYTES || rest.every((b) => b === 0)) break;
      const { length, seq } = readFrameHead(rest);
      if (FRAME_HEAD_BYTES + length > rest.length) break;
      if (length < SEALED_OVERHEAD || length > MAX_SEALED_BYTES) throw corrupt(`record at offset ${offset} has length ${length}`);
      // Reordered, replayed or deleted records break the sequence; an edited seq breaks the tag.
      if (seq !== expected) throw corrupt(`record at offset ${offset} has seq ${seq}, expected ${expected}`);
      let plaintext: Buffer;
      try {
        plaintext = aes256GcmDecrypt(key, rest.subarray(FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + length), recordAad(header.salt, seq));
      } catch (cause) {
        throw new FleetkeyError('DECRYPT_FAILED', { detail: `offline buffer: record ${seq} does not authenticate`, cause });
      }
      decodeBody(plaintext);
      entries.push({ seq, offset, frameBytes: FRAME_HEAD_BYTES + length });
      offset += FRAME_HEAD_BYTES + length;
      expected++;
    }
  } catch (e) {
    zero(key);
    throw e;
  }
  return { header, key, entries, end: offset };
}

/** Reads one record's frame and authenticates it again (the file may have changed since the scan). */
export function openFrame(frame: Buffer, entry: Entry, key: Buffer, salt: Buffer): RecordBody {
  const { length, seq } = readFrameHead(frame);
  if (seq !== entry.seq || FRAME_HEAD_BYTES + length !== frame.length) throw corrupt(`record ${entry.seq} changed on disk`);
  let plaintext: Buffer;
  try {
    plaintext = aes256GcmDecrypt(key, frame.subarray(FRAME_HEAD_BYTES), recordAad(salt, seq));
  } catch (cause) {
    throw new FleetkeyError('DECRYPT_FAILED', { detail: `offline buffer: record ${seq} does not authenticate`, cause });
  }
  return decodeBody(plaintext);
}

/** Seals one record for appending: the frame bytes. */
export function sealFrame(key: Buffer, salt: Buffer, seq: number, plaintext: Buffer): Buffer {
  const sealed = aes256GcmEncrypt(key, plaintext, recordAad(salt, seq));
  return Buffer.concat([frameHead(sealed.length, seq), sealed]);
}

/**
 * A new generation holding `bodies` from `firstSeq` on: fresh salt, so a fresh key (format.ts
 * explains why), and an authenticated header.
 */
export function buildGeneration(
  bodies: readonly RecordBody[],
  firstSeq: number,
  dropped: number,
  deriveKey: (salt: Buffer) => Buffer,
): { generation: Generation; bytes: Buffer } {
  const header: Header = { salt: randomBytes(SALT_BYTES), firstSeq, dropped };
  const key = deriveKey(header.salt);
  const signed = headerSignedPart(header);
  const parts: Buffer[] = [signed, aes256GcmEncrypt(key, Buffer.alloc(0), signed)];
  const entries: Entry[] = [];
  let offset = HEADER_BYTES;
  bodies.forEach((body, i) => {
    const frame = sealFrame(key, header.salt, firstSeq + i, encodeBody(body));
    parts.push(frame);
    entries.push({ seq: firstSeq + i, offset, frameBytes: frame.length });
    offset += frame.length;
  });
  return { generation: { header, key, entries, end: offset }, bytes: Buffer.concat(parts) };
}

/**
 * Replaces `path` with `bytes`: temp file (0600, O_EXCL) in the same directory, fsync, rename,
 * fsync the directory. A crash leaves the old file or the new one, never a mix (rename(2)).
 */
export async function replaceAtomically(dir: string, path: string, bytes: Buffer): Promise<void> {
  const tmp = join(dir, `.offline.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const out = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await out.writeFile(bytes);
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dir);
}
