/**
 * A synthetic fleet written straight into the store (one transaction, multi-row inserts), with the
 * answer every posture check must give computed here from the same rules, independently of SQL.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { insertRows } from '../../src/store/bulk-insert.js';
import type { Store } from '../../src/store/open-store.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

export interface SeededFleet {
  readonly expected: Record<string, string[]>;
}

export async function seedFleet(store: Store, n: number, now: number, expiringDays: number): Promise<SeededFleet> {
  const issuer = await store.db.selectFrom('ca_authorities').select('id').where('role', '=', 'issuing').where('status', '=', 'active').executeTakeFirstOrThrow();
  const enrollment = (label: string, kind: 'group' | 'individual', enabled: number, expiresAt: number | null, max: number | null) => ({
    id: randomUUID(), label, kind, enabled, expiresAt, max,
  });
  const enrollments = [
    enrollment('sym-unbounded', 'group', 1, null, null), // finding
    enrollment('sym-capped', 'group', 1, null, 5000),
    enrollment('sym-expiring', 'group', 1, now + 30 * DAY, null),
    enrollment('sym-disabled', 'group', 0, null, null),
    enrollment('one-device', 'individual', 1, null, null),
  ];
  const expected: Record<string, string[]> = {
    'enrollments.unbounded': [enrollments[0]!.id],
    'devices.without-name': [],
    'names.without-device': [],
    'certificates.expiring': [],
    'devices.symmetric-key-never-rotated': [],
    'devices.never-attested': [],
    'devices.attestation-stale': [],
    'devices.attestation-failing': [],
    'devices.quarantined': [],
  };
  // Attestation policies: one for a model, one for an enrollment (on_stale 'alert', so the module's
  // own staleness sweeper, running meanwhile, never quarantines a seeded device).
  const policies = [
    { id: randomUUID(), scope: 'model', key: 'robot-tpm' },
    { id: randomUUID(), scope: 'enrollment', key: enrollments[2]!.id },
  ];
  const attestation: unknown[][] = [];
  const devices: unknown[][] = [];
  const names: unknown[][] = [];
  const bindings: unknown[][] = [];
  const certs: unknown[][] = [];
  const evidence: unknown[][] = [];
  const cert = (deviceId: string, kind: string, status: string, notAfter: number) => {
    const serial = randomBytes(16).toString('hex');
    certs.push([serial, randomBytes(32).toString('hex'), deviceId, kind, issuer.id, 'symmetric', randomBytes(32).toString('hex'), now - 10 * DAY, notAfter, status, null, null, null, null, 'MA==', now]);
    return serial;
  };
  const ev = (deviceId: string, method: string, resetAt: number | null, enrollmentId: string) =>
    evidence.push([randomUUID(), deviceId, method, `${method}:${randomBytes(32).toString('hex')}`, '{}', null, enrollmentId, now - 100 * DAY, now, resetAt, resetAt === null ? null : 'repaired', resetAt === null ? null : 'admin']);

  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    const status: string = i % 50 === 0 ? 'retired' : i % 50 === 1 ? 'suspended' : i % 50 === 2 ? 'manufactured' : 'active';
    const model = i % 5 === 0 ? 'robot-tpm' : 'robot';
    devices.push([id, model, '{}', null, status, null, null, now - 200 * DAY, now]);
    const named = i % 10 !== 3 && status !== 'retired' && status !== 'manufactured';
    if (named) {
      const nameId = randomUUID();
      names.push([nameId, `dev-${i}`, '{}', now, now]);
      bindings.push([randomUUID(), nameId, id, now - 50 * DAY, null, null, 'seed', null, null]);
    } else if (status === 'active') {
      expected['devices.without-name']!.push(id);
    }
    if (status === 'manufactured') continue;
    // Operational certificates spread over 1..90 days, an hour inside each day so clock drift is harmless.
    const days = (i % 90) + 1;
    const serial = cert(id, 'operational', status === 'retired' ? 'revoked' : 'valid', now + days * DAY - HOUR);
    if (status !== 'retired' && days <= expiringDays) expected['certificates.expiring']!.push(serial);
    if (i % 7 === 0) cert(id, 'operational', 'superseded', now + 2 * DAY); // replaced by renewal: not a finding
    if (i % 11 === 0) cert(id, 'idevid', 'valid', now + 2 * DAY); // birth certificates are not operational
    if (i % 13 === 0) cert(id, 'operational', 'valid', now - DAY); // already expired: outside the window
    if (i % 13 === 0 && status !== 'retired' && days <= expiringDays) {
      /* the valid one above still counts */
    }
    if (i % 3 === 0) {
      if (i % 9 === 0) ev(id, 'symmetric', now - 60 * DAY, enrollments[0]!.id); // replaced once: rotated
      ev(id, 'symmetric', null, enrollments[0]!.id);
      if (i % 9 !== 0 && status !== 'retired') expected['devices.symmetric-key-never-rotated']!.push(id);
    } else {
      ev(id, 'x509', null, enrollments[i % 17 === 0 ? 2 : 1]!.id);
    }
    // Attestation state, for devices a policy covers (by model, or by their evidence's enrollment).
    const covered = model === 'robot-tpm' || (i % 3 !== 0 && i % 17 === 0);
    if (covered) {
      const inService = status === 'active' || status === 'provisioned';
      const r = (i * 7) % 5;
      const row = (st: string, dueAt: number, quarantinedAt: number | null) =>
        attestation.push([id, st, policies[0]!.id, now - 2 * DAY, now - DAY, dueAt, null, quarantinedAt, quarantinedAt === null ? null : 'attestation failed']);
      if (r === 0 && inService) expected['devices.never-attested']!.push(id);
      if (r === 1) row('trusted', now + DAY, null);
      if (r === 2) {
        row('failed', now + DAY, null);
        if (status !== 'retired') expected['devices.attestation-failing']!.push(id);
      }
      if (r === 3) {
        row('trusted', now - HOUR, null); // overdue, not yet swept
        if (status !== 'retired') expected['devices.attestation-stale']!.push(id);
      }
      if (r === 4) {
        row('stale', now - DAY, now - HOUR);
        if (status !== 'retired') expected['devices.attestation-stale']!.push(id);
        if (status !== 'retired') expected['devices.quarantined']!.push(id);
      }
    }
  }
  for (let k = 0; k < Math.ceil(n / 20); k++) {
    const nameId = randomUUID();
    names.push([nameId, `spare-${k}`, '{}', now, now]);
    expected['names.without-device']!.push(`spare-${k}`);
    if (k % 2 === 0) {
      // Held a device once: a closed binding does not hold it now.
      const d = devices[(k * 17) % devices.length]![0] as string;
      bindings.push([randomUUID(), nameId, d, now - 90 * DAY, now - 80 * DAY, null, 'seed', 'moved', 'seed']);
    }
  }
  await store.transaction(async (tx) => {
    await insertRows(tx, store.dialect, 'enrollments', [
      'id', 'label', 'kind', 'attestation', 'device_id', 'idevid_fingerprint', 'ek_sha256', 'trust_pem', 'secret_sealed', 'allocation', 'tags', 'validity',
      'reprovisioning', 'enabled', 'expires_at', 'max_devices', 'created_at', 'updated_at', 'decision_url', 'decision_secret_sealed', 'revocation', 'crl_urls',
    ], enrollments.map((e) => [e.id, e.label, e.kind, 'symmetric', null, null, null, null, null, '{}', '{}', '30d', 'keep', e.enabled, e.expiresAt, e.max, now, now, null, null, 'none', '[]']));
    await insertRows(tx, store.dialect, 'devices', ['id', 'model', 'serials', 'hw_fingerprint', 'status', 'status_reason', 'prior_status', 'created_at', 'updated_at'], devices);
    await insertRows(tx, store.dialect, 'names', ['id', 'name', 'tags', 'created_at', 'updated_at'], names);
    await insertRows(tx, store.dialect, 'bindings', ['id', 'name_id', 'device_id', 'valid_from', 'valid_to', 'bind_reason', 'bind_actor', 'unbind_reason', 'unbind_actor'], bindings);
    await insertRows(tx, store.dialect, 'certificates', [
      'serial', 'fingerprint', 'device_id', 'kind', 'issuer_id', 'method', 'public_key_sha256', 'not_before', 'not_after', 'status', 'superseded_by', 'grace_until', 'revoked_at', 'revocation_reason', 'der', 'created_at',
    ], certs);
    await insertRows(tx, store.dialect, 'attestation_policies', [
      'id', 'scope', 'scope_key', 'pcrs', 'reference', 'event_log', 'interval_ms', 'max_age_ms', 'on_failure', 'on_stale', 'require_on_connect', 'created_at', 'updated_at',
    ], policies.map((p) => [p.id, p.scope, p.key, '[7]', '{}', null, 60_000, 300_000, 'alert', 'alert', 0, now, now]));
    await insertRows(tx, store.dialect, 'device_attestation', [
      'device_id', 'status', 'policy_id', 'last_trusted_at', 'last_result_at', 'due_at', 'reason', 'quarantined_at', 'quarantine_reason',
    ], attestation);
    await insertRows(tx, store.dialect, 'device_evidence', ['id', 'device_id', 'method', 'evidence_key', 'identity', 'seen', 'enrollment_id', 'recorded_at', 'last_seen_at', 'reset_at', 'reset_reason', 'reset_actor'], evidence);
  });
  // What autovacuum does within a minute of a bulk load: without statistics PostgreSQL believed
  // the 8,600 open bindings were 7 rows and chose a 14 s nested loop for names.without-device
  // (measured). docs/posture.md tells operators to ANALYZE after an import.
  if (store.dialect === 'postgres') await sql`analyze`.execute(store.db);
  for (const ids of Object.values(expected)) ids.sort();
  return { expected };
}
