import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { FleetkeyError } from '@fleetkey/protocol';

const SHA256 = /^[0-9a-f]{64}$/;

export interface StoredArtifact {
  readonly sha256: string;
  readonly length: number;
}

/**
 * Artifacts stored content-addressed: `<dataDir>/updates/targets/<sha256>`. An upload is
 * streamed to a temporary file while it is hashed and counted, refused as soon as it passes its
 * declared length or the cap (nothing is kept), and renamed into place only when complete: a
 * file under a hash name always has that hash.
 */
export class ArtifactStore {
  readonly #dir: string;

  constructor(
    dataDir: string,
    readonly maxBytes: number,
  ) {
    this.#dir = join(dataDir, 'updates', 'targets');
  }

  async init(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Streams `body` into the store. `declared` (the length the uploader announces) bounds what is
   * read: one byte more and the upload is refused (TUF's endless-data attack, refused at the
   * server already). `expectedSha256` when given must match.
   */
  async put(body: Readable, declared: number | undefined, expectedSha256: string | undefined): Promise<StoredArtifact> {
    const limit = Math.min(declared ?? this.maxBytes, this.maxBytes);
    const tmp = join(this.#dir, `.upload-${randomBytes(12).toString('hex')}`);
    const hash = createHash('sha256');
    let length = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        length += chunk.length;
        if (length > limit) {
          done(new FleetkeyError('REPO_ARTIFACT_TOO_LARGE', { detail: `more than ${limit} bytes` }));
          return;
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, meter, createWriteStream(tmp, { mode: 0o600 }));
    } catch (e) {
      await rm(tmp, { force: true });
      // Drain nothing more: the client is told at once; the connection is closed by the route.
      if (e instanceof FleetkeyError) throw e;
      throw new FleetkeyError('BAD_REQUEST', { detail: `artifact upload interrupted: ${e instanceof Error ? e.message : String(e)}`, cause: e });
    }
    const sha256 = hash.digest('hex');
    if ((declared !== undefined && length !== declared) || (expectedSha256 !== undefined && expectedSha256 !== sha256)) {
      await rm(tmp, { force: true });
      throw new FleetkeyError('REPO_ARTIFACT_MISMATCH', { detail: `got ${length} bytes sha256 ${sha256}` });
    }
    await rename(tmp, this.path(sha256));
    return { sha256, length };
  }

  /** The stored file's length, or null when no artifact has that hash. */
  async size(sha256: string): Promise<number | null> {
    if (!SHA256.test(sha256)) return null;
    try {
      return (await stat(this.path(sha256))).size;
    } catch {
      return null;
    }
  }

  /** A read stream over [start, end] (inclusive, RFC 9110 §14.1.2 byte positions). */
  read(sha256: string, start: number, end: number): ReadStream {
    return createReadStream(this.path(sha256), { start, end, highWaterMark: 256 * 1024 });
  }

  private path(sha256: string): string {
    if (!SHA256.test(sha256)) throw new FleetkeyError('NOT_FOUND', { detail: 'bad artifact hash' });
    return join(this.#dir, sha256);
  }
}
