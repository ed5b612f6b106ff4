import type { SqlCheck } from './posture-provider.js';

const DAY_MS = 86_400_000;

/** The CA's custody and the certificates it issued. */
export const caChecks: readonly SqlCheck[] = [
  {
    id: 'certificates.expiring',
    severity: 'high',
    title: 'Operational certificates of devices in service that expire within the window (a device offline past notAfter cannot renew)',
    subject: 'certificate',
    // certificates_status_expiry (migration 014): a range on not_after within status = 'valid', kind = 'operational'.
    query: (db, p) =>
      db
        .selectFrom('certificates as c')
        .innerJoin('devices as d', 'd.id', 'c.device_id')
        .select('c.serial as id')
        .where('c.status', '=', 'valid')
        .where('c.kind', '=', 'operational')
        .where('c.not_after', '>', p.now)
        .where('c.not_after', '<=', p.now + p.expiringDays * DAY_MS)
        .where('d.status', 'in', ['provisioned', 'active', 'suspended']),
  },
  {
    id: 'ca.keys-not-in-hsm',
    severity: 'high',
    title: 'CA keys in use that live in files on the server, not in an HSM (root on the server host mints devices)',
    subject: 'authority',
    // 'offline' is a root whose key was exported and removed: not on the host at all.
    query: (db) => db.selectFrom('ca_authorities').select('id').where('status', 'in', ['active', 'retiring']).where('keystore', '=', 'file'),
  },
];
