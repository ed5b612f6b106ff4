import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * The director keeps a device's previous snapshot and targets next to the current ones. A device
 * reads timestamp → `N.snapshot.json` → `N.targets.json` in three requests; when its assignment
 * changes between them (a rollout wave, a rollback, a name moved) the director re-signs as N+1,
 * and serving only the latest turned the device's next request into a 404 (a 200-device rollout
 * in CI saw it). TUF 1.0 §5.7.3: a repository with consistent snapshots keeps the older versions
 * available while clients may still be reading them.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('director_devices').addColumn('prev_counter', 'integer').execute();
  await db.schema.alterTable('director_devices').addColumn('prev_snapshot_body', 'text').execute();
  await db.schema.alterTable('director_devices').addColumn('prev_targets_body', 'text').execute();
}
