import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/** Enrollments, what each device was provisioned by, and single-use provisioning challenges. */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('enrollments')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('label', 'varchar(128)', (c) => c.notNull())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('attestation', 'varchar(16)', (c) => c.notNull())
    .addColumn('device_id', 'varchar(36)')
    .addColumn('idevid_fingerprint', 'varchar(64)')
    .addColumn('ek_sha256', 'varchar(64)')
    .addColumn('trust_pem', 'text')
    .addColumn('secret_sealed', 'text')
    .addColumn('allocation', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('validity', 'varchar(16)', (c) => c.notNull())
    .addColumn('reprovisioning', 'varchar(8)', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('expires_at', ms)
    .addColumn('max_devices', 'integer')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('enrollments_device').on('enrollments').columns(['device_id']).execute();
  await db.schema.createIndex('enrollments_kind').on('enrollments').columns(['attestation', 'kind']).execute();

  await db.schema
    .createTable('provisioning_records')
    .addColumn('device_id', 'varchar(36)', (c) => c.primaryKey().references('devices.id'))
    .addColumn('enrollment_id', 'varchar(36)', (c) => c.notNull().references('enrollments.id'))
    .addColumn('method', 'varchar(16)', (c) => c.notNull())
    .addColumn('first_at', ms, (c) => c.notNull())
    .addColumn('last_at', ms, (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('last_serial', 'varchar(40)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('provisioning_enrollment').on('provisioning_records').columns(['enrollment_id']).execute();

  // Nonces (X.509 without mTLS) and TPM credential challenges: single use, short-lived.
  await db.schema
    .createTable('provisioning_challenges')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('kind', 'varchar(8)', (c) => c.notNull())
    .addColumn('device_id', 'varchar(36)')
    .addColumn('enrollment_id', 'varchar(36)')
    .addColumn('secret_sha256', 'varchar(64)')
    .addColumn('expires_at', ms, (c) => c.notNull())
    .addColumn('used_at', ms)
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('challenges_expiry').on('provisioning_challenges').columns(['expires_at']).execute();
}
