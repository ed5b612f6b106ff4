import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Measured-boot attestation (issue 13): the AK public recorded at provisioning (quotes are
 * verified with it), policies per enrollment or model, single-use quote nonces, each device's
 * attestation state (trusted / failed / stale, quarantine) and the history of verdicts.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  // TPM2B_PUBLIC of the AK the EK activated (base64): the key every quote of this device must verify under.
  await db.schema.alterTable('device_evidence').addColumn('ak_public', 'text').execute();
  await db.schema
    .createTable('attestation_policies')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('scope', 'varchar(16)', (c) => c.notNull()) // 'enrollment' | 'model'
    .addColumn('scope_key', 'varchar(128)', (c) => c.notNull())
    .addColumn('pcrs', 'text', (c) => c.notNull()) // JSON number[] (SHA-256 bank)
    .addColumn('reference', 'text') // JSON { "<pcr>": [hex, ...] } accepted values
    .addColumn('event_log', 'text') // JSON { "<pcr>": [hex, ...] } allowed event digests
    .addColumn('interval_ms', ms, (c) => c.notNull())
    .addColumn('max_age_ms', ms, (c) => c.notNull())
    .addColumn('on_failure', 'varchar(16)', (c) => c.notNull())
    .addColumn('on_stale', 'varchar(16)', (c) => c.notNull())
    .addColumn('require_on_connect', 'integer', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('attestation_policies_scope').on('attestation_policies').columns(['scope', 'scope_key']).unique().execute();
  await db.schema
    .createTable('attestation_nonces')
    .addColumn('nonce_sha256', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('device_id', 'varchar(36)', (c) => c.notNull().references('devices.id'))
    .addColumn('expires_at', ms, (c) => c.notNull())
    .addColumn('used_at', ms)
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('attestation_nonces_device').on('attestation_nonces').columns(['device_id', 'created_at']).execute();
  await db.schema
    .createTable('device_attestation')
    .addColumn('device_id', 'varchar(36)', (c) => c.primaryKey().references('devices.id'))
    .addColumn('status', 'varchar(16)', (c) => c.notNull()) // 'trusted' | 'failed' | 'stale'
    .addColumn('policy_id', 'varchar(36)')
    .addColumn('last_trusted_at', ms)
    .addColumn('last_result_at', ms, (c) => c.notNull())
    .addColumn('due_at', ms, (c) => c.notNull()) // stale when now > due_at
    .addColumn('reason', 'text')
    .addColumn('quarantined_at', ms)
    .addColumn('quarantine_reason', 'text')
    .execute();
  await db.schema.createIndex('device_attestation_due').on('device_attestation').columns(['status', 'due_at']).execute();
  await db.schema
    .createTable('attestations')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('device_id', 'varchar(36)', (c) => c.notNull().references('devices.id'))
    .addColumn('at', ms, (c) => c.notNull())
    .addColumn('verdict', 'varchar(16)', (c) => c.notNull()) // 'trusted' | 'failed' | 'stale'
    .addColumn('code', 'varchar(64)')
    .addColumn('reason', 'text')
    .addColumn('policy_id', 'varchar(36)')
    .addColumn('pcrs', 'text') // JSON { "<pcr>": hex }
    .addColumn('action', 'varchar(16)')
    .execute();
  await db.schema.createIndex('attestations_history').on('attestations').columns(['device_id', 'at']).execute();
  void sql;
}
