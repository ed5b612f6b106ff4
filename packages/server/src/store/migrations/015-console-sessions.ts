import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Web console sessions (issue 14): an API token exchanged for a cookie. Only the SHA-256 of the
 * cookie secret is stored (a copy of the table signs nobody in); the session names the token it
 * was opened with, so revoking the token ends its sessions and the role is the token's, read on
 * every request. Also the indexes the console's server-side device filters need at 100,000 rows.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;
  await db.schema
    .createTable('console_sessions')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('token_id', 'varchar(36)', (c) => c.notNull().references('api_tokens.id'))
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('expires_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('console_sessions_expiry').on('console_sessions').column('expires_at').execute();
  // Keyset pagination by id under a filter: (filter, id) lets the store walk the index in order.
  await db.schema.createIndex('devices_status_id').on('devices').columns(['status', 'id']).execute();
  await db.schema.createIndex('devices_model_id').on('devices').columns(['model', 'id']).execute();
}
