import { FleetkeyError } from '@fleetkey/protocol';
import { isUniqueViolation, type Store, type Tx } from '../../store/open-store.js';
import type { TufMetadataRow } from '../../store/schema.js';
import type { RepoName } from './online-keys.js';

type Db = Tx | Store['db'];
export type Role = TufMetadataRow['role'];

/** Reads of tuf_metadata, with a bounded cache of the immutable versioned documents. */
export class TufStore {
  readonly #cache = new Map<string, TufMetadataRow>();

  constructor(readonly store: Store) {}

  async latest(db: Db, repo: RepoName, role: Role): Promise<TufMetadataRow | undefined> {
    return db.selectFrom('tuf_metadata').selectAll().where('repo', '=', repo).where('role', '=', role).orderBy('version', 'desc').limit(1).executeTakeFirst();
  }

  /** A given version: immutable once written, so cached. */
  async version(repo: RepoName, role: Role, version: number): Promise<TufMetadataRow | undefined> {
    const k = `${repo}/${role}/${version}`;
    const hit = this.#cache.get(k);
    if (hit !== undefined) return hit;
    const row = await this.store.db.selectFrom('tuf_metadata').selectAll().where('repo', '=', repo).where('role', '=', role).where('version', '=', version).executeTakeFirst();
    if (row !== undefined) {
      if (this.#cache.size >= 512) this.#cache.delete(this.#cache.keys().next().value as string);
      this.#cache.set(k, row);
    }
    return row;
  }

  /** A concurrent writer that took the same version first (PostgreSQL) is a CONFLICT to retry, not a 500. */
  async insert(tx: Tx, row: TufMetadataRow): Promise<void> {
    try {
      await tx.insertInto('tuf_metadata').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new FleetkeyError('CONFLICT', { detail: `${row.repo} ${row.role} version ${row.version} written concurrently`, cause: e });
      throw e;
    }
  }
}
