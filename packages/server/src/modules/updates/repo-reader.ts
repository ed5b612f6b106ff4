import { FleetkeyError } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import type { ArtifactStore } from './artifact-store.js';
import type { Director } from './director.js';
import type { RepoName } from './online-keys.js';
import type { TufStore } from './tuf-store.js';

const VERSIONED = /^([1-9]\d{0,9})\.(root|snapshot|targets)\.json$/;
const TARGET = /^([0-9a-f]{64})\.([A-Za-z0-9][A-Za-z0-9._+-]{0,199})$/;
/** How long the current timestamp is served from memory (other nodes' re-signings show within it). */
const TIMESTAMP_CACHE_MS = 1000;

/**
 * What devices and operators read: metadata files by their TUF 1.0 §5.x names with consistent
 * snapshots (`{VERSION}.{ROLE}.json`, `timestamp.json`), and targets by `{SHA256}.{NAME}`.
 * Anything else is NOT_FOUND; nothing here writes.
 */
export class RepoReader {
  #timestamp: { body: string; at: number } | null = null;

  constructor(
    private readonly tuf: TufStore,
    private readonly artifacts: ArtifactStore,
    private readonly directorDocs: Director,
    private readonly clock: Clock,
  ) {}

  async image(file: string): Promise<string> {
    if (file === 'timestamp.json') {
      const now = this.clock.now();
      if (this.#timestamp !== null && now - this.#timestamp.at < TIMESTAMP_CACHE_MS) return this.#timestamp.body;
      const row = await this.tuf.latest(this.tuf.store.db, 'image', 'timestamp');
      if (row === undefined) throw new FleetkeyError('NOT_FOUND', { detail: 'no image timestamp yet' });
      this.#timestamp = { body: row.body, at: now };
      return row.body;
    }
    return this.versioned('image', file);
  }

  /** Drops the cached timestamp (after this node re-signed it). */
  invalidate(): void {
    this.#timestamp = null;
  }

  /**
   * The director's documents for ONE device (known from its mTLS certificate, never from the
   * request): its root is shared, its timestamp/snapshot/targets are its own; the latest
   * timestamp, and the snapshot and targets of the latest two generations (see Director).
   */
  async director(file: string, deviceId: string): Promise<string> {
    const m = VERSIONED.exec(file);
    if (m?.[2] === 'root') return this.versioned('director', file);
    const docs = await this.directorDocs.documents(deviceId);
    if (file === 'timestamp.json') return docs.timestamp_body;
    if (m !== null && Number(m[1]) === docs.counter) return m[2] === 'snapshot' ? docs.snapshot_body : docs.targets_body;
    if (m !== null && docs.prev_counter !== null && Number(m[1]) === docs.prev_counter) {
      const body = m[2] === 'snapshot' ? docs.prev_snapshot_body : docs.prev_targets_body;
      if (body !== null) return body;
    }
    throw new FleetkeyError('NOT_FOUND', { detail: `director ${file} for ${deviceId}` });
  }

  /** The director root only (operators bootstrap devices with it). */
  async directorRoot(file: string): Promise<string> {
    const m = VERSIONED.exec(file);
    if (m?.[2] !== 'root') throw new FleetkeyError('NOT_FOUND', { detail: file });
    return this.versioned('director', file);
  }

  async latestRoot(repo: RepoName): Promise<string> {
    const row = await this.tuf.latest(this.tuf.store.db, repo, 'root');
    if (row === undefined) throw new FleetkeyError('REPO_NOT_INITIALISED');
    return row.body;
  }

  /** A target by its consistent-snapshot name; the stored file must exist under that hash. */
  async target(file: string): Promise<{ sha256: string; size: number }> {
    const m = TARGET.exec(file);
    if (m === null) throw new FleetkeyError('NOT_FOUND', { detail: file });
    const sha256 = m[1] as string;
    const size = await this.artifacts.size(sha256);
    if (size === null) throw new FleetkeyError('NOT_FOUND', { detail: file });
    return { sha256, size };
  }

  artifactStream(sha256: string, start: number, end: number): ReturnType<ArtifactStore['read']> {
    return this.artifacts.read(sha256, start, end);
  }

  private async versioned(repo: RepoName, file: string): Promise<string> {
    const m = VERSIONED.exec(file);
    if (m === null) throw new FleetkeyError('NOT_FOUND', { detail: file });
    const row = await this.tuf.version(repo, m[2] as 'root' | 'snapshot' | 'targets', Number(m[1]));
    if (row === undefined) throw new FleetkeyError('NOT_FOUND', { detail: `${repo} ${file}` });
    return row.body;
  }
}
