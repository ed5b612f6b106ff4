import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Rate buckets shared by the nodes of a cluster (issue 15 follow-up): the provisioning limits per
 * source address and per device identity are token buckets kept here, so N nodes allow the
 * configured rate in total, not N times it. A single node keeps its buckets in memory and never
 * writes this table.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('rate_buckets')
    // `<limiter>:<sha256 of the key>`: bounded size, no source address stored in clear.
    .addColumn('bucket', 'varchar(96)', (c) => c.primaryKey())
    .addColumn('tokens', 'double precision', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    // Whether the last take was granted (RETURNING sees only the new row).
    .addColumn('granted', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rate_buckets_updated').on('rate_buckets').column('updated_at').execute();
}
