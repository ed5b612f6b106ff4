import { constants } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetkeyError, isCommandId, isFleetkeyError, MQTT_LIMITS, type DeviceMessageKind } from '@fleetkey/protocol';
import { hkdfSha256, secretBuffer, zero, type KeyProtector } from '@fleetkey/crypto';
import { ensureSecureDir } from '../internal/secure-dir.js';
import { loadOrCreateDataKey } from './data-key.js';
import { corrupt, encodeBody, FRAME_HEAD_BYTES, HEADER_BYTES, KEY_INFO, MESSAGE_KINDS, SALT_BYTES, SEALED_OVERHEAD, type Header, type RecordBody } from './format.js';
import { buildGeneration, openFrame, replaceAtomically, scanLog, sealFrame, type Entry, type Generation } from './log-file.js';

export const LOG_FILE = 'offline.log';
const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;
const MIN_MAX_BYTES = 4096;

export interface OfflineBufferOptions {
  /** Directory for `offline.log` (and `offline.key` with a protector); created 0700. */
  dir: string;
  /** A 32-byte data key from the caller. Exactly one of `key` and `protector`. */
  key?: Uint8Array;
  /** Seals a random data key in `offline.key` (the Fleetkey envelope): machine secret or passphrase. */
  protector?: KeyProtector;
  /** Upper bound of the log file in bytes (default 8 MiB, at least 4 KiB). */
  maxBytes?: number;
  /** fdatasync after every append (default true): an acknowledged append survives power loss. */
  sync?: boolean;
  /**
   * What to do when the file does not authenticate at open: 'throw' (default: DECRYPT_FAILED,
   * nothing is touched) or 'quarantine' (the file is renamed `offline.log.corrupt-<time>`, never
   * deleted, and an empty buffer starts at sequence 1).
   */
  onCorrupt?: 'throw' | 'quarantine';
}

export interface BufferedMessage {
  /** Position in the buffer's lifetime sequence; lets a receiver drop a redelivery. */
  readonly seq: number;
  readonly kind: DeviceMessageKind;
  readonly commandId?: string;
  readonly payload: Buffer;
  readonly appendedAt: Date;
}

/** Return true once the message is safely delivered (e.g. PUBACK received); anything else stops the drain. */
export type DrainHandler = (message: BufferedMessage) => boolean | Promise<boolean>;

export interface OfflineBufferStats {
  readonly records: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly nextSeq: number;
  /** Records dropped (oldest first) to make room, over the buffer's lifetime (persisted). */
  readonly dropped: number;
  /** Bytes of an incomplete last record discarded at open (a write torn by a crash). */
  readonly tornBytesDiscarded: number;
  /** Name of the file set aside at open by `onCorrupt: 'quarantine'`, if any. */
  readonly quarantinedFile: string | undefined;
}

const closedError = (): FleetkeyError => new FleetkeyError('INTERNAL', { detail: 'offline buffer is closed' });

/**
 * An append-only, encrypted, bounded on-disk queue of the messages a device produces while
 * offline (format: ./format.ts). `append` writes one AES-256-GCM record, authenticated with its
 * sequence number; `drain` replays records in order and removes exactly those the handler
 * acknowledged, by atomically rewriting the remainder under a fresh key.
 *
 * When full, the **oldest** records are dropped (counted in `stats().dropped`): a device that
 * comes back keeps its most recent data. Room is made for an eighth of the buffer at once so
 * the rewrite is amortised over many appends.
 *
 * Delivery is at-least-once: a crash after the handler acknowledged but before the rewrite
 * replays those records; `seq` identifies them. One process owns a buffer directory at a time.
 * Operations are serialised: an `append` made while a `drain` runs waits for it (so a handler
 * must not `append` itself).
 */
export class OfflineBuffer {
  readonly dir: string;
  readonly maxBytes: number;
  /** Largest payload `append` accepts: one MQTT packet, and at most a quarter of the buffer. */
  readonly maxPayloadBytes: number;
  readonly #path: string;
  readonly #sync: boolean;
  #dataKey: Buffer | undefined;
  #genKey: Buffer | undefined;
  #header: Header = { salt: Buffer.alloc(SALT_BYTES), firstSeq: 1, dropped: 0 };
  #fh: FileHandle | undefined;
  #size = 0;
  #entries: Entry[] = [];
  #tornBytes = 0;
  #quarantined: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(dir: string, dataKey: Buffer, maxBytes: number, sync: boolean) {
    this.dir = dir;
    this.#path = join(dir, LOG_FILE);
    this.#dataKey = dataKey;
    this.maxBytes = maxBytes;
    this.maxPayloadBytes = Math.min(MQTT_LIMITS.maxPacketBytes, Math.floor(maxBytes / 4));
    this.#sync = sync;
  }

  /**
   * Opens (or creates) the buffer in `dir`, authenticates every record, discards a torn last
   * record and positions appends after the rest.
   * @throws FleetkeyError DECRYPT_FAILED (tampered, reordered, wrong key) | KEY_FILE_PERMISSIONS |
   *   KEY_FILE_CORRUPT (protector cannot open offline.key) | KEY_FILE_UNSUPPORTED
   */
  static async open(options: OfflineBufferOptions): Promise<OfflineBuffer> {
    if ((options.key === undefined) === (options.protector === undefined)) throw new TypeError('give exactly one of key and protector');
    if (options.key !== undefined && options.key.length !== 32) throw new RangeError('offline buffer key must be 32 bytes');
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_MAX_BYTES) throw new RangeError(`maxBytes must be an integer >= ${MIN_MAX_BYTES}`);
    await ensureSecureDir(options.dir);
    // A caller's key is copied off the V8 heap, where zero() at close reaches the only copy.
    let dataKey: Buffer;
    if (options.key !== undefined) {
      dataKey = secretBuffer(32);
      dataKey.set(options.key);
    } else {
      dataKey = await loadOrCreateDataKey(options.dir, options.protector!);
    }
    const buffer = new OfflineBuffer(options.dir, dataKey, maxBytes, options.sync ?? true);
    try {
      await buffer.#load(options.onCorrupt ?? 'throw');
    } catch (e) {
      await buffer.#release();
      throw e;
    }
    return buffer;
  }

  /**
   * Appends one message. Returns its sequence number and how many old records were dropped to
   * make room for it.
   * @throws FleetkeyError GATEWAY_TOPIC_INVALID (unknown kind, bad or missing commandId);
   *   RangeError when the payload exceeds {@link maxPayloadBytes}
   */
  append(kind: DeviceMessageKind, payload: Uint8Array, options: { commandId?: string } = {}): Promise<{ seq: number; dropped: number }> {
    if (!MESSAGE_KINDS.includes(kind)) return Promise.reject(new FleetkeyError('GATEWAY_TOPIC_INVALID', { detail: `message kind ${String(kind)}` }));
    const commandId = options.commandId;
    if ((kind === 'command_result') !== (commandId !== undefined) || (commandId !== undefined && !isCommandId(commandId))) {
      return Promise.reject(new FleetkeyError('GATEWAY_TOPIC_INVALID', { detail: 'commandId must be given, valid, and only for command_result' }));
    }
    if (!(payload instanceof Uint8Array) || payload.length > this.maxPayloadBytes) {
      return Promise.reject(new RangeError(`payload must be a Uint8Array of at most ${this.maxPayloadBytes} bytes`));
    }
    const body: RecordBody = { kind, commandId, appendedAt: Date.now(), payload: Buffer.from(payload) };
    return this.#exclusive(async () => {
      const plaintext = encodeBody(body);
      const frameBytes = FRAME_HEAD_BYTES + SEALED_OVERHEAD + plaintext.length;
      const dropped = this.#size + frameBytes > this.maxBytes ? await this.#makeRoom(frameBytes) : 0;
      const fh = this.#handle();
      const seq = this.#nextSeq();
      const frame = sealFrame(this.#key(), this.#header.salt, seq, plaintext);
      try {
        // One write at the end: a crash leaves the old records plus at most a torn prefix of this one.
        await fh.write(frame, 0, frame.length, this.#size);
        if (this.#sync) await fh.datasync();
      } catch (e) {
        await fh.truncate(this.#size).catch(() => undefined); // no half frame for the next append to follow
        throw e;
      }
      this.#entries.push({ seq, offset: this.#size, frameBytes: frame.length });
      this.#size += frame.length;
      return { seq, dropped };
    });
  }

  /**
   * Replays buffered messages oldest first (at most `max`), stopping at the first the handler
   * does not acknowledge or that throws, then removes the acknowledged ones durably. A handler
   * error is rethrown after the removal.
   * @throws FleetkeyError DECRYPT_FAILED when a record changed on disk since open
   */
  drain(handler: DrainHandler, options: { max?: number } = {}): Promise<{ delivered: number; remaining: number }> {
    return this.#exclusive(async () => {
      const limit = Math.min(options.max ?? Infinity, this.#entries.length);
      let delivered = 0;
      let failure: { error: unknown } | undefined;
      while (delivered < limit) {
        try {
          const body = await this.#read(this.#entries[delivered]!);
          const message: BufferedMessage = {
            seq: this.#entries[delivered]!.seq,
            kind: body.kind,
            payload: body.payload,
            appendedAt: new Date(body.appendedAt),
            ...(body.commandId === undefined ? {} : { commandId: body.commandId }),
          };
          if ((await handler(message)) !== true) break;
        } catch (error) {
          failure = { error };
          break;
        }
        delivered++;
      }
      if (delivered > 0) await this.#rewriteFrom(delivered, this.#header.dropped);
      if (failure !== undefined) throw failure.error;
      return { delivered, remaining: this.#entries.length };
    });
  }

  stats(): OfflineBufferStats {
    return {
      records: this.#entries.length,
      bytes: this.#size,
      maxBytes: this.maxBytes,
      nextSeq: this.#nextSeq(),
      dropped: this.#header.dropped,
      tornBytesDiscarded: this.#tornBytes,
      quarantinedFile: this.#quarantined,
    };
  }

  /** Waits for running operations, closes the file and zeroes the keys. */
  async close(): Promise<void> {
    await this.#queue;
    await this.#release();
  }

  // --- internals -------------------------------------------------------------------------------

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#dataKey === undefined) throw closedError();
      return fn();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #handle(): FileHandle {
    if (this.#fh === undefined) throw closedError();
    return this.#fh;
  }

  #key(): Buffer {
    if (this.#genKey === undefined) throw closedError();
    return this.#genKey;
  }

  #nextSeq(): number {
    return this.#header.firstSeq + this.#entries.length;
  }

  #deriveKey(salt: Buffer): Buffer {
    if (this.#dataKey === undefined) throw closedError();
    return hkdfSha256(this.#dataKey, salt, KEY_INFO, 32);
  }

  async #release(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    zero(this.#dataKey);
    zero(this.#genKey);
    this.#dataKey = undefined;
    this.#genKey = undefined;
    await fh?.close();
  }

  async #load(onCorrupt: 'throw' | 'quarantine'): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(this.#path, constants.O_RDWR | constants.O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return this.#rewrite([], 1, 0);
      throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${this.#path}: ${String(code)}`, cause: e });
    }
    this.#fh = fh;
    const st = await fh.stat();
    const uid = process.getuid?.();
    if (!st.isFile() || (st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid && st.uid !== 0)) {
      throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${this.#path} mode ${(st.mode & 0o777).toString(8)} uid ${st.uid}` });
    }
    const bytes = await fh.readFile();
    try {
      await this.#scan(bytes);
    } catch (e) {
      if (onCorrupt !== 'quarantine' || !isFleetkeyError(e) || (e.code !== 'DECRYPT_FAILED' && e.code !== 'KEY_FILE_UNSUPPORTED')) throw e;
      await fh.close();
      this.#fh = undefined;
      this.#quarantined = `${LOG_FILE}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await rename(this.#path, join(this.dir, this.#quarantined));
      this.#entries = [];
      this.#tornBytes = 0;
      await this.#rewrite([], 1, 0);
    }
  }

  /** Authenticates the whole file and cuts a torn tail off it. */
  async #scan(bytes: Buffer): Promise<void> {
    const generation = scanLog(bytes, (salt) => this.#deriveKey(salt));
    this.#adopt(generation);
    if (generation.end < bytes.length) {
      this.#tornBytes = bytes.length - generation.end;
      await this.#handle().truncate(generation.end);
      await this.#handle().sync();
    }
  }

  #adopt(g: Generation): void {
    zero(this.#genKey);
    this.#genKey = g.key;
    this.#header = g.header;
    this.#entries = g.entries;
    this.#size = g.end;
  }

  /** Reads and re-authenticates one record. */
  async #read(entry: Entry): Promise<RecordBody> {
    const frame = Buffer.alloc(entry.frameBytes);
    const { bytesRead } = await this.#handle().read(frame, 0, frame.length, entry.offset);
    if (bytesRead !== frame.length) throw corrupt(`record ${entry.seq} is missing`);
    return openFrame(frame, entry, this.#key(), this.#header.salt);
  }

  /** Drops the oldest records so the new frame fits with an eighth of the buffer to spare. */
  async #makeRoom(frameBytes: number): Promise<number> {
    const budget = this.maxBytes - frameBytes - Math.floor(this.maxBytes / 8);
    let kept = this.#size - HEADER_BYTES;
    let drop = 0;
    while (drop < this.#entries.length && HEADER_BYTES + kept > budget) {
      kept -= this.#entries[drop]!.frameBytes;
      drop++;
    }
    await this.#rewriteFrom(drop, this.#header.dropped + drop);
    return drop;
  }

  /** Rewrites the log keeping the records from index `from` on. */
  async #rewriteFrom(from: number, dropped: number): Promise<void> {
    const keep = this.#entries.slice(from);
    const bodies: RecordBody[] = [];
    for (const e of keep) bodies.push(await this.#read(e));
    await this.#rewrite(bodies, keep[0]?.seq ?? this.#nextSeq(), dropped);
  }

  /** Writes a new generation holding `bodies` over the log, then appends continue on it. */
  async #rewrite(bodies: readonly RecordBody[], firstSeq: number, dropped: number): Promise<void> {
    const { generation, bytes } = buildGeneration(bodies, firstSeq, dropped, (salt) => this.#deriveKey(salt));
    try {
      await replaceAtomically(this.dir, this.#path, bytes);
    } catch (e) {
      zero(generation.key);
      throw e;
    }
    const fh = await open(this.#path, constants.O_RDWR | constants.O_NOFOLLOW);
    await this.#fh?.close();
    this.#fh = fh;
    this.#adopt(generation);
  }
}
