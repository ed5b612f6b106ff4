import type { Kysely } from 'kysely';
import type { Tx } from '../../store/open-store.js';

/**
 * What the rollout engine needs from the releases module (issue 12 contract: `desired_releases`
 * is the ONE place that says which release a NAME should run; the director signs per device from
 * device → current name → desired release). Every call runs inside the caller's transaction, so
 * an assignment, its rollout row and its audit entry commit together.
 */
export interface DesiredReleasesPort {
  releaseExists(tx: Tx, releaseId: string): Promise<boolean>;
  /** The release the name should run now, or null. */
  forName(tx: Tx, nameId: string): Promise<string | null>;
  set(tx: Tx, now: number, nameId: string, releaseId: string, rolloutId: string | null): Promise<void>;
  clear(tx: Tx, nameId: string): Promise<void>;
}

/**
 * The port over the contract's tables (`releases`, `desired_releases`, migration 010 owned by the
 * tuf-repo branch), written against the column names the contract fixes. Untyped: those row
 * types live in the other branch's schema.
 */
export class ContractDesiredReleases implements DesiredReleasesPort {
  async releaseExists(tx: Tx, releaseId: string): Promise<boolean> {
    const db = tx as unknown as Kysely<any>;
    return (await db.selectFrom('releases').select('id').where('id', '=', releaseId).executeTakeFirst()) !== undefined;
  }

  async forName(tx: Tx, nameId: string): Promise<string | null> {
    const db = tx as unknown as Kysely<any>;
    const r = (await db.selectFrom('desired_releases').select('release_id').where('name_id', '=', nameId).executeTakeFirst()) as { release_id: string } | undefined;
    return r?.release_id ?? null;
  }

  async set(tx: Tx, now: number, nameId: string, releaseId: string, rolloutId: string | null): Promise<void> {
    const db = tx as unknown as Kysely<any>;
    const row = { name_id: nameId, release_id: releaseId, source: rolloutId === null ? 'operator' : 'rollout', rollout_id: rolloutId, updated_at: now };
    await db
      .insertInto('desired_releases')
      .values(row)
      .onConflict((oc) => oc.column('name_id').doUpdateSet({ release_id: releaseId, source: row.source, rollout_id: rolloutId, updated_at: now }))
      .execute();
  }

  async clear(tx: Tx, nameId: string): Promise<void> {
    const db = tx as unknown as Kysely<any>;
    await db.deleteFrom('desired_releases').where('name_id', '=', nameId).execute();
  }
}
