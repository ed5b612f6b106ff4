import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/** An enrollment may ask an allow/deny webhook before allocating a device. */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('enrollments').addColumn('decision_url', 'text').execute();
  await db.schema.alterTable('enrollments').addColumn('decision_secret_sealed', 'text').execute();
}
