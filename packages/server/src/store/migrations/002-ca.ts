import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/** The CA: its authorities, every certificate it issued, and the current CRL per issuer. */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('ca_authorities')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('keystore', 'varchar(16)', (c) => c.notNull())
    .addColumn('key_ref', 'text')
    .addColumn('certificate_pem', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('ski', 'varchar(64)', (c) => c.notNull())
    .addColumn('not_before', ms, (c) => c.notNull())
    .addColumn('not_after', ms, (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('retired_at', ms)
    .execute();
  await db.schema.createIndex('ca_role_status').on('ca_authorities').columns(['role', 'status']).execute();

  await db.schema
    .createTable('certificates')
    .addColumn('serial', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('fingerprint', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('device_id', 'varchar(36)', (c) => c.notNull().references('devices.id'))
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('issuer_id', 'varchar(36)', (c) => c.notNull().references('ca_authorities.id'))
    .addColumn('method', 'varchar(128)', (c) => c.notNull())
    .addColumn('public_key_sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('not_before', ms, (c) => c.notNull())
    .addColumn('not_after', ms, (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('superseded_by', 'varchar(40)')
    .addColumn('grace_until', ms)
    .addColumn('revoked_at', ms)
    .addColumn('revocation_reason', 'varchar(32)')
    .addColumn('der', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('certificates_device').on('certificates').columns(['device_id', 'created_at']).execute();
  await db.schema.createIndex('certificates_issuer_status').on('certificates').columns(['issuer_id', 'status']).execute();
  await db.schema.createIndex('certificates_public_key').on('certificates').columns(['public_key_sha256']).execute();

  await db.schema
    .createTable('crls')
    .addColumn('issuer_id', 'varchar(36)', (c) => c.primaryKey().references('ca_authorities.id'))
    .addColumn('crl_number', ms, (c) => c.notNull())
    .addColumn('this_update', ms, (c) => c.notNull())
    .addColumn('next_update', ms, (c) => c.notNull())
    .addColumn('der', 'text', (c) => c.notNull())
    .execute();
}
