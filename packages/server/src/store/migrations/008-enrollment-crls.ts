import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Revocation of outside CAs: each enrollment says how much it needs CRLs (`revocation`) and where
 * to fetch them (`crl_urls`, JSON); `enrollment_crls` keeps the newest verified CRL per
 * (enrollment, anchor, issuingDistributionPoint scope), uploaded or fetched.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema.alterTable('enrollments').addColumn('revocation', 'varchar(16)', (c) => c.notNull().defaultTo('none')).execute();
  await db.schema.alterTable('enrollments').addColumn('crl_urls', 'text', (c) => c.notNull().defaultTo('[]')).execute();
  // Existing X.509 enrollments trusting an outside CA become fail-closed: the defect this fixes is
  // that such a manufacturer's revocations were never heard.
  await sql`update enrollments set revocation = 'require' where attestation = 'x509' and trust_pem is not null`.execute(db);
  await db.schema
    .createTable('enrollment_crls')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('enrollment_id', 'varchar(36)', (c) => c.notNull().references('enrollments.id'))
    .addColumn('issuer_sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('scope', 'varchar(64)', (c) => c.notNull())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('der', 'text', (c) => c.notNull())
    .addColumn('this_update', ms, (c) => c.notNull())
    .addColumn('next_update', ms, (c) => c.notNull())
    .addColumn('crl_number', 'varchar(64)')
    .addColumn('entries', 'integer', (c) => c.notNull())
    .addColumn('source', 'varchar(8)', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addUniqueConstraint('enrollment_crls_scope', ['enrollment_id', 'issuer_sha256', 'scope'])
    .execute();
}
