import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Signed updates (issue 12): the TUF image repository's metadata, its online keys, the artifacts'
 * releases, the one table that says which release a name should run, and the director's
 * per-device state. Metadata bodies are stored as the exact bytes served (canonical JSON), so
 * what a device verifies is what the store holds.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('releases')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('model', 'varchar(128)', (c) => c.notNull())
    .addColumn('version', 'varchar(64)', (c) => c.notNull())
    .addColumn('min_version', 'varchar(64)')
    .addColumn('target_name', 'varchar(255)', (c) => c.notNull())
    .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('length', ms, (c) => c.notNull())
    // The TUF key id(s) (comma-separated) whose signatures over targets metadata admitted it.
    .addColumn('signed_by', 'text', (c) => c.notNull())
    // The version of the image repository's targets metadata that first listed it.
    .addColumn('targets_version', 'integer', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .execute();
  // One release per (model, version) and one per target name: a name maps to one file forever.
  await db.schema.createIndex('releases_model_version').on('releases').columns(['model', 'version']).unique().execute();
  await db.schema.createIndex('releases_target_name').on('releases').column('target_name').unique().execute();

  // The ONE place that says which release a name should run (operator or rollout).
  await db.schema
    .createTable('desired_releases')
    .addColumn('name_id', 'varchar(36)', (c) => c.primaryKey().references('names.id'))
    .addColumn('release_id', 'varchar(36)', (c) => c.notNull().references('releases.id'))
    .addColumn('source', 'varchar(16)', (c) => c.notNull())
    .addColumn('rollout_id', 'varchar(36)')
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addColumn('updated_by', 'varchar(128)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('desired_releases_release').on('desired_releases').column('release_id').execute();

  // Every signed version of every role of the image repository and the director's root (TUF 1.0
  // §5: clients fetch root versions one by one, so every root version is kept).
  await db.schema
    .createTable('tuf_metadata')
    .addColumn('repo', 'varchar(16)', (c) => c.notNull())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('expires_at', ms, (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addPrimaryKeyConstraint('tuf_metadata_pk', ['repo', 'role', 'version'])
    .execute();

  // Online keys (image snapshot/timestamp, director targets/snapshot/timestamp), sealed under the
  // master key; the public half is the TUF key object as the root lists it.
  await db.schema
    .createTable('tuf_online_keys')
    .addColumn('key_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('repo', 'varchar(16)', (c) => c.notNull())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('sealed_private', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('retired_at', ms)
    .execute();

  // The director's per-device documents (Uptane): one counter per device, bumped on every
  // re-signing, so a device can refuse any older director document.
  await db.schema
    .createTable('director_devices')
    .addColumn('device_id', 'varchar(36)', (c) => c.primaryKey().references('devices.id'))
    .addColumn('counter', 'integer', (c) => c.notNull())
    .addColumn('name_id', 'varchar(36)')
    .addColumn('release_id', 'varchar(36)')
    .addColumn('timestamp_body', 'text', (c) => c.notNull())
    .addColumn('snapshot_body', 'text', (c) => c.notNull())
    .addColumn('targets_body', 'text', (c) => c.notNull())
    .addColumn('expires_at', ms, (c) => c.notNull())
    .addColumn('signed_at', ms, (c) => c.notNull())
    .execute();
}
