import type { DesiredReleases } from '../updates/desired-releases.js';
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
 * The port over the releases module's DesiredReleases service (tuf-repo branch): assignments go
 * through its setInWork/clearInWork, so they are checked (release exists, model of the name's
 * device) and announced (`release.assigned`) exactly as an operator's `release assign` is.
 */
export function desiredReleasesPort(d: DesiredReleases): DesiredReleasesPort {
  return {
    releaseExists: async (tx, releaseId) => (await tx.selectFrom('releases').select('id').where('id', '=', releaseId).executeTakeFirst()) !== undefined,
    forName: async (tx, nameId) => (await d.forName(tx, nameId))?.release_id ?? null,
    set: (w, nameId, releaseId, rolloutId) => d.setInWork(w, nameId, releaseId, { source: 'rollout', rolloutId }),
    clear: (w, nameId) => d.clearInWork(w, nameId),
  };
}
