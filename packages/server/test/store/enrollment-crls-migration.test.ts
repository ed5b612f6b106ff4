import { describe, expect, test } from 'vitest';
import { migrateToLatest } from '../../src/store/migrate.js';
import * as m001 from '../../src/store/migrations/001-registry.js';
import * as m002 from '../../src/store/migrations/002-ca.js';
import * as m003 from '../../src/store/migrations/003-provisioning.js';
import * as m004 from '../../src/store/migrations/004-data.js';
import * as m005 from '../../src/store/migrations/005-enrollment-decision.js';
import * as m006 from '../../src/store/migrations/006-message-keys.js';
import * as m007 from '../../src/store/migrations/007-binding-intervals.js';
import { DIALECTS, migrateOnly, openBareDatabase } from '../support/databases.js';

const BEFORE_008 = { '001-registry': m001, '002-ca': m002, '003-provisioning': m003, '004-data': m004, '005-enrollment-decision': m005, '006-message-keys': m006, '007-binding-intervals': m007 };

const enrollment = (id: string, attestation: string, trustPem: string | null) => ({
  id,
  label: id,
  kind: 'group',
  attestation,
  trust_pem: trustPem,
  allocation: '{"type":"pending"}',
  tags: '{}',
  validity: '30d',
  reprovisioning: 'keep',
  enabled: 1,
  created_at: 1,
  updated_at: 1,
});

describe.each(DIALECTS)('migration 008 (enrollment CRLs) on %s', (dialect) => {
  test('fail-closed upgrade: existing X.509 enrollments trusting an outside CA now require CRLs; the others need none', async () => {
    const { db, close } = await openBareDatabase(dialect);
    try {
      await migrateOnly(db, dialect, BEFORE_008);
      await db
        .insertInto('enrollments')
        .values([enrollment('outside', 'x509', '-----BEGIN CERTIFICATE-----'), enrollment('ours', 'x509', null), enrollment('tpm', 'tpm', '-----BEGIN CERTIFICATE-----'), enrollment('sym', 'symmetric', null)])
        .execute();
      await migrateToLatest(db, dialect);
      const rows = await db.selectFrom('enrollments').select(['id', 'revocation', 'crl_urls']).orderBy('id').execute();
      expect(rows).toEqual([
        { id: 'ours', revocation: 'none', crl_urls: '[]' },
        { id: 'outside', revocation: 'require', crl_urls: '[]' },
        { id: 'sym', revocation: 'none', crl_urls: '[]' },
        { id: 'tpm', revocation: 'none', crl_urls: '[]' },
      ]);
      const crl = { enrollment_id: 'outside', issuer_sha256: 'a'.repeat(64), scope: '', issuer: 'CN=x', der: 'AA==', this_update: 1, next_update: 2, crl_number: '1', entries: 0, source: 'upload', url: null, created_at: 1, updated_at: 1 };
      await db.insertInto('enrollment_crls').values({ id: 'c1', ...crl }).execute();
      // One CRL per (enrollment, anchor, scope): a second row for the same scope is impossible.
      await expect(db.insertInto('enrollment_crls').values({ id: 'c2', ...crl }).execute()).rejects.toThrow();
    } finally {
      await close();
    }
  });
});
