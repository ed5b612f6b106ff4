import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Device update reports (issue 12, `devices/{id}/update`) and the installed software on each
 * device. Reports are append-only: the rollout engine reads them as the truth of what each
 * device did; the device row keeps only the last version a device reported `installed`.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('device_update_reports')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('device_id', 'varchar(36)', (c) => c.notNull().references('devices.id'))
    // The name the device was bound to when it reported (null when unbound): rollouts follow names.
    .addColumn('name_id', 'varchar(36)')
    .addColumn('release_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('version', 'varchar(64)', (c) => c.notNull())
    .addColumn('phase', 'varchar(16)', (c) => c.notNull())
    .addColumn('code', 'varchar(64)')
    .addColumn('progress', 'double precision')
    .addColumn('received_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('device_update_reports_device').on('device_update_reports').columns(['device_id', 'received_at']).execute();
  await db.schema.createIndex('device_update_reports_release').on('device_update_reports').columns(['release_id', 'phase']).execute();
  await db.schema.alterTable('devices').addColumn('installed_version', 'varchar(64)').execute();
  await db.schema.alterTable('devices').addColumn('installed_release_id', 'varchar(64)').execute();
  await db.schema.alterTable('devices').addColumn('installed_at', ms).execute();
  await db.schema.createIndex('devices_installed_version').on('devices').column('installed_version').execute();
}
