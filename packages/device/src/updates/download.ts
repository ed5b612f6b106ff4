import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { request, type Agent } from 'node:https';
import { refuse } from './refusal.js';

export interface DownloadTarget {
  readonly url: string;
  /** Signed length (TUF targets metadata): never more is read. */
  readonly length: number;
  /** Signed sha256, lowercase hex. */
  readonly sha256: string;
}

export interface DownloadOptions {
  readonly agent: Agent;
  /** Where the partial file lives between attempts (`<path>.part`) and the verified file ends. */
  readonly path: string;
  readonly timeoutMs?: number;
  readonly onProgress?: (fraction: number) => void;
}

/**
 * Downloads one target with resume and verifies it. A `.part` file left by an earlier attempt is
 * continued with `Range: bytes=N-` and `If-Range: "<sha256>"` (RFC 9110 §14.2, §13.1.5: the
 * server answers 206 only for the same representation, so a resume never splices two files).
 * Never more than the signed length is written (TUF 1.0 §5.7.3, endless data): the first byte
 * past it aborts with UPDATE_LENGTH_EXCEEDED and the partial file is dropped; the sha256 of the
 * whole file is then compared (§5.7.3, arbitrary software) and a mismatch drops it too.
 * Returns the path of the verified file.
 */
export async function downloadTarget(t: DownloadTarget, o: DownloadOptions): Promise<string> {
  const part = `${o.path}.part`;
  let have = 0;
  try {
    have = (await stat(part)).size;
  } catch {
    have = 0;
  }
  if (have > t.length) {
    await rm(part, { force: true });
    have = 0;
  }
  if (have < t.length || t.length === 0) {
    try {
      await fetchInto(t, o, part, have);
    } catch (e) {
      // Length overflow means the server is hostile: nothing of it is kept for a later resume.
      if ((e as { code?: string }).code === 'UPDATE_LENGTH_EXCEEDED') await rm(part, { force: true });
      throw e;
    }
  }
  const size = (await stat(part)).size;
  if (size !== t.length) throw refuse('UPDATE_FETCH_FAILED', `download ended at ${size} of ${t.length} bytes; resumable`);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(part)) hash.update(chunk as Buffer);
  const got = hash.digest('hex');
  if (got !== t.sha256) {
    await rm(part, { force: true });
    throw refuse('UPDATE_HASH_MISMATCH', `sha256 ${got} is not the signed ${t.sha256}`);
  }
  await rename(part, o.path);
  return o.path;
}

function fetchInto(t: DownloadTarget, o: DownloadOptions, part: string, from: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (from > 0) {
      headers['range'] = `bytes=${from}-`;
      headers['if-range'] = `"${t.sha256}"`;
    }
    const req = request(t.url, { method: 'GET', agent: o.agent, headers, timeout: o.timeoutMs ?? 60_000 }, (res) => {
      const status = res.statusCode ?? 0;
      let offset: number;
      if (status === 206 && from > 0 && res.headers['content-range']?.startsWith(`bytes ${from}-`) === true) offset = from;
      else if (status === 200) offset = 0; // the server ignored the range: start over
      else {
        res.resume();
        reject(refuse('UPDATE_FETCH_FAILED', `HTTP ${status} for the target`));
        return;
      }
      void (async () => {
        const fh = await open(part, offset === 0 ? 'w' : 'a', 0o600);
        let written = offset;
        try {
          for await (const chunk of res as AsyncIterable<Buffer>) {
            if (written + chunk.length > t.length) {
              // Never read past the signed length: stop the transfer at once.
              res.destroy();
              throw refuse('UPDATE_LENGTH_EXCEEDED', `the server sent more than the signed ${t.length} bytes`);
            }
            await fh.write(chunk);
            written += chunk.length;
            o.onProgress?.(t.length === 0 ? 1 : written / t.length);
          }
          await fh.sync();
        } finally {
          await fh.close();
        }
      })().then(resolve, (e: unknown) => reject((e as { code?: string }).code?.startsWith('UPDATE_') === true ? e : refuse('UPDATE_FETCH_FAILED', `download interrupted: ${(e as Error).message}`, e)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => reject(refuse('UPDATE_FETCH_FAILED', `cannot fetch the target: ${(e as NodeJS.ErrnoException).code ?? e.message}`, e)));
    req.end();
  });
}
