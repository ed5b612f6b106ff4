import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.js';
import { ATTESTATION_FINDINGS } from '../posture/pending-providers.js';
import { sqlProvider, type PostureProvider, type SqlCheck } from '../posture/posture-provider.js';

const IN_SERVICE = ['provisioned', 'active'] as const;

/**
 * The attestation family of the posture audit, over this module's tables: `device_attestation`
 * (one row per device that attested at least once: status, due_at, quarantine) and the policies.
 * A device is expected to attest when a policy applies to it: its current evidence's enrollment
 * has one, or its model has one (the rule of AttestationPolicies.forDevice).
 */
export const attestationChecks: readonly SqlCheck[] = [
  {
    id: 'devices.never-attested',
    severity: 'high',
    title: 'Devices in service that an attestation policy covers and that never attested (their boot state is unknown)',
    subject: 'device',
    // device_attestation's primary key for the anti-join; attestation_policies_scope (scope, scope_key)
    // and device_evidence_one_per_device for the policy lookups.
    query: (db) =>
      db
        .selectFrom('devices as d')
        .select('d.id as id')
        .where('d.status', 'in', IN_SERVICE)
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('device_attestation as a').select('a.device_id').whereRef('a.device_id', '=', 'd.id'))))
        .where(({ or, exists, selectFrom }) =>
          or([
            exists(selectFrom('attestation_policies as p').select('p.id').where('p.scope', '=', 'model').whereRef('p.scope_key', '=', 'd.model')),
            exists(
              selectFrom('device_evidence as e')
                .innerJoin('attestation_policies as p', (j) => j.onRef('p.scope_key', '=', 'e.enrollment_id').on('p.scope', '=', 'enrollment'))
                .select('p.id')
                .whereRef('e.device_id', '=', 'd.id')
                .where('e.reset_at', 'is', null),
            ),
          ]),
        ),
  },
  {
    id: 'devices.attestation-stale',
    severity: 'high',
    title: 'Devices whose last attestation is older than their policy allows (marked stale, or overdue and not yet swept)',
    subject: 'device',
    // device_attestation_due (status, due_at).
    query: (db, p) =>
      db
        .selectFrom('device_attestation as a')
        .innerJoin('devices as d', 'd.id', 'a.device_id')
        .select('a.device_id as id')
        .where('d.status', 'in', [...IN_SERVICE, 'suspended'])
        .where((eb) => eb.or([eb('a.status', '=', 'stale'), eb.and([eb('a.status', 'in', ['trusted', 'failed']), eb('a.due_at', '<', p.now)])])),
  },
  {
    id: 'devices.attestation-failing',
    severity: 'critical',
    title: 'Devices whose last attestation failed (a quote that did not verify, or PCRs outside the policy)',
    subject: 'device',
    query: (db) =>
      db
        .selectFrom('device_attestation as a')
        .innerJoin('devices as d', 'd.id', 'a.device_id')
        .select('a.device_id as id')
        .where('d.status', 'in', [...IN_SERVICE, 'suspended'])
        .where('a.status', '=', 'failed'),
  },
  {
    id: 'devices.quarantined',
    severity: 'high',
    title: 'Devices in quarantine (reachable only for attestation and updates)',
    subject: 'device',
    // device_attestation_quarantined (migration 014).
    query: (db) =>
      db
        .selectFrom('device_attestation as a')
        .innerJoin('devices as d', 'd.id', 'a.device_id')
        .select('a.device_id as id')
        .where('a.quarantined_at', 'is not', null)
        .where('d.status', 'not in', ['revoked', 'retired']),
  },
];

// The placeholder and this provider must name the same findings.
if (attestationChecks.map((c) => c.id).join() !== ATTESTATION_FINDINGS.join()) throw new Error('attestation posture findings out of sync with ATTESTATION_FINDINGS');

/** Registered by the composition root under the name `attestation`, replacing the placeholder. */
export function attestationPostureProvider(db: Kysely<Database>): PostureProvider {
  return sqlProvider('attestation', db, attestationChecks);
}
