import type { SqlCheck } from './posture-provider.js';

/** How devices get in, and what they got in with. */
export const provisioningChecks: readonly SqlCheck[] = [
  {
    id: 'enrollments.unbounded',
    severity: 'medium',
    title: 'Enabled group enrollments with neither an expiry nor a device limit (a leaked group credential admits devices forever)',
    subject: 'enrollment',
    // An individual enrollment admits one device by construction.
    query: (db) =>
      db
        .selectFrom('enrollments')
        .select('id')
        .where('kind', '=', 'group')
        .where('enabled', '=', 1)
        .where('expires_at', 'is', null)
        .where('max_devices', 'is', null),
  },
  {
    id: 'devices.symmetric-key-never-rotated',
    severity: 'medium',
    title: 'Devices still admitted by the symmetric key they were manufactured with (never replaced by an evidence reset and re-admission)',
    subject: 'device',
    // device_evidence_current_method (migration 014) finds the current symmetric rows; an
    // earlier row for the device (reset_at set) means its evidence was replaced at least once.
    query: (db) =>
      db
        .selectFrom('device_evidence as e')
        .innerJoin('devices as d', 'd.id', 'e.device_id')
        .select('e.device_id as id')
        .where('e.method', '=', 'symmetric')
        .where('e.reset_at', 'is', null)
        .where('d.status', 'not in', ['revoked', 'retired'])
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('device_evidence as p').select('p.id').whereRef('p.device_id', '=', 'e.device_id').where('p.reset_at', 'is not', null))),
        ),
  },
];
