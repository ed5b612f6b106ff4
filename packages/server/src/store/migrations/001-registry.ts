import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * The registry, operator tokens, audit chain and event outbox. One migration for both dialects;
 * the only dialect-specific parts are the triggers that make binding history and the audit log
 * append-only at the database level.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const ms = 'bigint' as const;

  await db.schema
    .createTable('devices')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('model', 'varchar(128)')
    .addColumn('serials', 'text')
    .addColumn('hw_fingerprint', 'varchar(64)')
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('status_reason', 'text')
    .addColumn('prior_status', 'varchar(16)')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('devices_status_idx').on('devices').columns(['status']).execute();

  await db.schema
    .createTable('names')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();

  // Primary key on `key`: a string once used as a name (current or alias) is never taken again,
  // so an old reference can always be followed to where the name went.
  await db.schema
    .createTable('name_keys')
    .addColumn('key', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('name_id', 'varchar(36)', (c) => c.notNull().references('names.id'))
    .addColumn('kind', 'varchar(8)', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('retired_at', ms)
    .execute();

  await db.schema
    .createTable('bindings')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name_id', 'varchar(36)', (c) => c.notNull().references('names.id'))
    .addColumn('device_id', 'varchar(36)', (c) => c.notNull().references('devices.id'))
    .addColumn('valid_from', ms, (c) => c.notNull())
    .addColumn('valid_to', ms)
    .addColumn('bind_reason', 'text')
    .addColumn('bind_actor', 'varchar(128)', (c) => c.notNull())
    .addColumn('unbind_reason', 'text')
    .addColumn('unbind_actor', 'varchar(128)')
    .addCheckConstraint('bindings_interval', sql`valid_to is null or valid_to >= valid_from`)
    .execute();
  // The model's invariant, held by the database itself: at any instant a name has at most one
  // device and a device at most one name. Two racing writers cannot both commit an open binding.
  await db.schema
    .createIndex('bindings_one_open_per_name')
    .on('bindings')
    .column('name_id')
    .unique()
    .where(sql.ref('valid_to'), 'is', null)
    .execute();
  await db.schema
    .createIndex('bindings_one_open_per_device')
    .on('bindings')
    .column('device_id')
    .unique()
    .where(sql.ref('valid_to'), 'is', null)
    .execute();
  // "Who held NAME at T" / "which name had DEVICE at T": routing asks these per message.
  await db.schema.createIndex('bindings_name_time').on('bindings').columns(['name_id', 'valid_from']).execute();
  await db.schema.createIndex('bindings_device_time').on('bindings').columns(['device_id', 'valid_from']).execute();

  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(128)')
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('last_four', 'varchar(4)', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('revoked_at', ms)
    .addColumn('last_used_at', ms)
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('seq', ms, (c) => c.primaryKey())
    .addColumn('at', ms, (c) => c.notNull())
    .addColumn('actor', 'varchar(128)', (c) => c.notNull())
    .addColumn('action', 'varchar(64)', (c) => c.notNull())
    .addColumn('subject', 'varchar(256)')
    .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
    .addColumn('code', 'varchar(64)')
    .addColumn('request_id', 'varchar(64)')
    .addColumn('detail', 'text')
    .addColumn('prev_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_subject').on('audit_log').columns(['subject', 'seq']).execute();

  // A single row that every audit append locks: it serialises the chain on PostgreSQL.
  await db.schema
    .createTable('audit_head')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('seq', ms, (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .execute();
  await sql`insert into audit_head (id, seq, hash) values (1, 0, ${'0'.repeat(64)})`.execute(db);

  await db.schema
    .createTable('events')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('type', 'varchar(64)', (c) => c.notNull())
    .addColumn('subject', 'varchar(256)', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_created').on('events').columns(['created_at']).execute();

  await db.schema
    .createTable('webhooks')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('events', 'text', (c) => c.notNull())
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('removed_at', ms)
    .execute();

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('webhook_id', 'varchar(36)', (c) => c.notNull().references('webhooks.id'))
    .addColumn('event_id', 'varchar(36)', (c) => c.notNull().references('events.id'))
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', ms, (c) => c.notNull())
    .addColumn('last_status', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', ms)
    .addColumn('created_at', ms, (c) => c.notNull())
    .addUniqueConstraint('deliveries_once', ['webhook_id', 'event_id'])
    .execute();
  await db.schema
    .createIndex('deliveries_due')
    .on('webhook_deliveries')
    .columns(['status', 'next_attempt_at'])
    .execute();

  await appendOnlyTriggers(db, dialect);
}

/**
 * Binding history and the audit log are append-only: the database refuses deletes, refuses
 * changes to a closed binding, and refuses any change to an audit row. Code never relies on it,
 * but a bug or a hand-typed statement cannot silently rewrite history (a tamper still can with
 * the triggers dropped: that is what `audit verify` is for).
 */
async function appendOnlyTriggers(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect === 'sqlite') {
    await sql`create trigger bindings_no_delete before delete on bindings
      begin select raise(abort, 'bindings are append-only'); end`.execute(db);
    await sql`create trigger bindings_closed_immutable before update on bindings
      when old.valid_to is not null
      begin select raise(abort, 'a closed binding is immutable'); end`.execute(db);
    await sql`create trigger bindings_identity_immutable before update of name_id, device_id, valid_from on bindings
      begin select raise(abort, 'binding identity is immutable'); end`.execute(db);
    await sql`create trigger audit_no_update before update on audit_log
      begin select raise(abort, 'audit log is append-only'); end`.execute(db);
    await sql`create trigger audit_no_delete before delete on audit_log
      begin select raise(abort, 'audit log is append-only'); end`.execute(db);
    return;
  }
  await sql`create function fleetkey_append_only() returns trigger language plpgsql as $$
    begin
      if tg_table_name = 'bindings' and tg_op = 'UPDATE' and old.valid_to is null
         and new.name_id = old.name_id and new.device_id = old.device_id and new.valid_from = old.valid_from then
        return new;
      end if;
      raise exception '% is append-only', tg_table_name;
    end $$`.execute(db);
  await sql`create trigger bindings_append_only before update or delete on bindings
    for each row execute function fleetkey_append_only()`.execute(db);
  await sql`create trigger audit_append_only before update or delete on audit_log
    for each row execute function fleetkey_append_only()`.execute(db);
}
