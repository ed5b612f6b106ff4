import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * What devices send and what is sent to them. Diagnostics are kept under the name bound at
 * receive time (history continues across replacements); internal telemetry under the device.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('diagnostics')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name_id', 'varchar(36)')
    .addColumn('name', 'varchar(128)')
    .addColumn('device_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('received_at', ms, (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('diagnostics_name_time').on('diagnostics').columns(['name_id', 'received_at']).execute();
  await db.schema.createIndex('diagnostics_device_time').on('diagnostics').columns(['device_id', 'received_at']).execute();

  await db.schema
    .createTable('telemetry')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('device_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('name_id', 'varchar(36)')
    .addColumn('received_at', ms, (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('telemetry_device_time').on('telemetry').columns(['device_id', 'received_at']).execute();

  await db.schema
    .createTable('device_state')
    .addColumn('device_id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('commands')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('name', 'varchar(128)', (c) => c.notNull())
    .addColumn('type', 'varchar(64)', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('expires_at', ms, (c) => c.notNull())
    .addColumn('delivered_to', 'varchar(36)')
    .addColumn('delivered_at', ms)
    .addColumn('acked_at', ms)
    .addColumn('result', 'text')
    .addColumn('completed_at', ms)
    .execute();
  await db.schema.createIndex('commands_name_status').on('commands').columns(['name_id', 'status']).execute();

  await db.schema
    .createTable('device_presence')
    .addColumn('device_id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('connected', 'integer', (c) => c.notNull())
    .addColumn('since', ms, (c) => c.notNull())
    .addColumn('remote_address', 'varchar(64)')
    .execute();
}
