import { describe, expect, test } from 'vitest';
import { migrateToLatest } from '../../src/store/migrate.js';
import { isUniqueViolation } from '../../src/store/open-store.js';
import { DIALECTS, openBareDatabase } from '../support/databases.js';

const violates = async (p: Promise<unknown>): Promise<boolean> => p.then(() => false, (e: unknown) => (isUniqueViolation(e) ? true : Promise.reject(e)));

// Issue 10: "one current evidence per device, one device per evidence" is held by the database
// itself (partial unique indexes), so two racing first admissions cannot both commit.
describe.each(DIALECTS)('migration 009 (device evidence) on %s', (dialect) => {
  test('fail: a second current evidence for a device, or one evidence current for two devices; a reset releases both', async () => {
    const { db, close } = await openBareDatabase(dialect);
    try {
      await migrateToLatest(db, dialect);
      for (const id of ['d-a', 'd-b']) await db.insertInto('devices').values({ id, status: 'provisioned', created_at: 1, updated_at: 1 }).execute();
      await db
        .insertInto('enrollments')
        .values({ id: 'e-1', label: 'tpm', kind: 'group', attestation: 'tpm', allocation: '{}', tags: '{}', validity: '30d', reprovisioning: 'keep', enabled: 1, created_at: 1, updated_at: 1 })
        .execute();
      let n = 0;
      const row = (device: string, key: string, resetAt: number | null = null) => ({
        id: `ev-${n++}`,
        device_id: device,
        method: 'tpm',
        evidence_key: key,
        identity: '{}',
        seen: null,
        enrollment_id: 'e-1',
        recorded_at: n,
        last_seen_at: n,
        reset_at: resetAt,
        reset_reason: null,
        reset_actor: null,
      });
      await db.insertInto('device_evidence').values(row('d-a', 'tpm:ek-a')).execute();
      expect(await violates(db.insertInto('device_evidence').values(row('d-a', 'tpm:ek-other')).execute())).toBe(true);
      expect(await violates(db.insertInto('device_evidence').values(row('d-b', 'tpm:ek-a')).execute())).toBe(true);
      await db.updateTable('device_evidence').set({ reset_at: 100 }).where('device_id', '=', 'd-a').execute();
      // After the reset: the device takes new evidence, and its old EK may prove another device.
      await db.insertInto('device_evidence').values(row('d-a', 'tpm:ek-new')).execute();
      await db.insertInto('device_evidence').values(row('d-b', 'tpm:ek-a')).execute();
      const current = await db.selectFrom('device_evidence').select(['device_id', 'evidence_key']).where('reset_at', 'is', null).orderBy('device_id').execute();
      expect(current).toEqual([{ device_id: 'd-a', evidence_key: 'tpm:ek-new' }, { device_id: 'd-b', evidence_key: 'tpm:ek-a' }]);
      // Challenges carry their evidence from start to finish.
      await db.insertInto('provisioning_challenges').values({ id: 'c-1', kind: 'tpm', expires_at: 1, created_at: 1, evidence: '{"method":"tpm"}' }).execute();
      expect((await db.selectFrom('provisioning_challenges').select('evidence').executeTakeFirstOrThrow()).evidence).toBe('{"method":"tpm"}');
    } finally {
      await close();
    }
  });
});
