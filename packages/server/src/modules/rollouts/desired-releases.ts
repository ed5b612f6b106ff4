import type { Kysely } from 'kysely';
import type { Work } from '../../context/unit-of-work.js';
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
  /**
   * Assigns inside the caller's unit of work. May refuse one name with a FleetkeyError before it
   * writes anything (e.g. a release for another model than the name's device): the engine then
   * records that name as failed with the code, and the batch goes on.
   */
  set(w: Work, nameId: string, releaseId: string, rolloutId: string): Promise<void>;
  clear(w: Work, nameId: string): Promise<void>;
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

  async set(w: Work, nameId: string, releaseId: string, rolloutId: string): Promise<void> {
    const db = w.tx as unknown as Kysely<any>;
    const now = w.now;
    const row = { name_id: nameId, release_id: releaseId, source: 'rollout', rollout_id: rolloutId, updated_at: now, updated_by: w.ctx.actor.label };
    await db
      .insertInto('desired_releases')
      .values(row)
      .onConflict((oc) => oc.column('name_id').doUpdateSet({ release_id: releaseId, source: row.source, rollout_id: rolloutId, updated_at: now }))
      .execute();
  }

  async clear(w: Work, nameId: string): Promise<void> {
    const db = w.tx as unknown as Kysely<any>;
    await db.deleteFrom('desired_releases').where('name_id', '=', nameId).execute();
  }
}
