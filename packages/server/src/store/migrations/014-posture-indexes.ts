import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Indexes for the posture audit (issue 13), one per check that would otherwise scan a table that
 * grows with the fleet: certificates about to expire (a range on not_after among valid
 * operational ones), devices whose current evidence is a symmetric key, devices in quarantine.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.createIndex('certificates_status_expiry').on('certificates').columns(['status', 'kind', 'not_after']).execute();
  await db.schema
    .createIndex('device_evidence_current_method')
    .on('device_evidence')
    .columns(['method', 'device_id'])
    .where(sql.ref('reset_at'), 'is', null)
    .execute();
  // Devices in quarantine (device_attestation is migration 013's): partial, so it holds only them.
  await db.schema.createIndex('device_attestation_quarantined').on('device_attestation').column('device_id').where(sql.ref('quarantined_at'), 'is not', null).execute();
}
