/**
 * "One indexed query per finding": SQLite's plan for every check of every provider, on the
 * migrated schema. A full scan is allowed only where the finding is about every row of a table
 * that does not grow with the fleet (CA authorities, enrollments) or where every row must be
 * looked at (names.without-device: each name is checked against the open-binding index).
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { caChecks } from '../../src/modules/posture/ca-checks.js';
import { provisioningChecks } from '../../src/modules/posture/provisioning-checks.js';
import { registryChecks } from '../../src/modules/posture/registry-checks.js';
import { attestationChecks } from '../../src/modules/attestation/posture-findings.js';

const ALLOWED_SCANS: Record<string, RegExp> = {
  'names.without-device': /^SCAN n\b/,
  'ca.keys-not-in-hsm': /^SCAN ca_authorities\b/,
  'enrollments.unbounded': /^SCAN enrollments\b/,
  // A partial index that holds only the quarantined devices: its whole scan is the answer.
  'devices.quarantined': /^SCAN a USING (COVERING )?INDEX device_attestation_quarantined$/,
};

describe('posture query plans (SQLite)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('sqlite');
  });
  afterAll(async () => t?.stop());

  test.each([...registryChecks, ...caChecks, ...provisioningChecks, ...attestationChecks].map((c) => [c.id, c] as const))('fail: %s scans no table that grows with the fleet', async (id, check) => {
    const q = check.query(t.server.store.db, { now: Date.now(), expiringDays: 30, idLimit: 100 }).select(sql<number>`count(*) over ()`.as('total')).orderBy(sql`1`).limit(100).compile();
    // The compiled query with its parameters, prefixed: the plan SQLite would run.
    const rows = (await t.server.store.db.executeQuery({ ...q, sql: `explain query plan ${q.sql}` })) as { rows: { detail: string }[] };
    const scans = rows.rows.map((r) => r.detail).filter((d) => /^SCAN /.test(d) && !/^SCAN \(subquery-\d+\)$/.test(d));
    const allowed = ALLOWED_SCANS[id];
    const bad = scans.filter((d) => allowed === undefined || !allowed.test(d));
    expect(bad, rows.rows.map((r) => r.detail).join('\n')).toEqual([]);
  });
});
