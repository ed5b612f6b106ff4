import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Evidence bound to the physical identity (issue 10): what proved a device at its first admission
 * (TPM EK, IDevID issuer + serial + key, symmetric key id). Rows are never deleted: an operator's
 * reset closes the current one (reset_at) and the next admission opens a new one.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('device_evidence')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('device_id', 'varchar(36)', (c) => c.notNull().references('devices.id'))
    .addColumn('method', 'varchar(16)', (c) => c.notNull())
    // The physical secret the evidence proves (EK, IDevID key, symmetric key): `<method>:<hex>`.
    .addColumn('evidence_key', 'varchar(96)', (c) => c.notNull())
    // Canonical JSON of what must match exactly on every later admission.
    .addColumn('identity', 'text', (c) => c.notNull())
    // What may change between admissions and is only recorded (the TPM's AK name).
    .addColumn('seen', 'text')
    .addColumn('enrollment_id', 'varchar(36)', (c) => c.notNull().references('enrollments.id'))
    .addColumn('recorded_at', ms, (c) => c.notNull())
    .addColumn('last_seen_at', ms, (c) => c.notNull())
    .addColumn('reset_at', ms)
    .addColumn('reset_reason', 'text')
    .addColumn('reset_actor', 'varchar(128)')
    .execute();
  // One current evidence per device, and one device per evidence (an EK bound to device A cannot
  // claim device B): held by the database, so two racing first admissions cannot both commit.
  await db.schema.createIndex('device_evidence_one_per_device').on('device_evidence').column('device_id').unique().where(sql.ref('reset_at'), 'is', null).execute();
  await db.schema.createIndex('device_evidence_one_device_per_key').on('device_evidence').column('evidence_key').unique().where(sql.ref('reset_at'), 'is', null).execute();
  await db.schema.createIndex('device_evidence_history').on('device_evidence').columns(['device_id', 'recorded_at']).execute();
  // A TPM challenge carries the evidence it was issued for to the finish step.
  await db.schema.alterTable('provisioning_challenges').addColumn('evidence', 'text').execute();
}
