import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Binding history as the database's own guarantee: no two bindings of one name, and no two of
 * one device, hold a common instant. Intervals are half-open, [valid_from, valid_to), with an
 * open binding reaching to infinity; one bound and unbound in the same millisecond is empty and
 * holds no instant (device-at/name-at never answer it either).
 *
 * PostgreSQL: exclusion constraints over int8range, which also stop two concurrent writers (an
 * exclusion constraint waits for the other transaction like a unique index does). btree_gist
 * gives GiST the `=` on name_id/device_id; it ships with the Debian postgresql package and is a
 * trusted extension (PostgreSQL 13+), so a database owner may create it.
 *
 * SQLite serialises writers, so a trigger that looks at the committed rows suffices. Only an
 * insert can create an overlap: an update may only close an open binding (the append-only
 * triggers of 001 refuse every other change), which shrinks [from, ∞) to [from, to).
 *
 * A database that already holds overlapping history (written before the writers took their time
 * under lock) fails this migration naming the rows: history is append-only, so which of two
 * overlapping bindings was true is for an operator to settle, not for a migration to guess.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await refuseRecordedOverlaps(db);
  if (dialect === 'postgres') {
    await sql`create extension if not exists btree_gist`.execute(db);
    await sql`alter table bindings add constraint bindings_name_no_overlap
      exclude using gist (name_id with =, int8range(valid_from, valid_to) with &&)`.execute(db);
    await sql`alter table bindings add constraint bindings_device_no_overlap
      exclude using gist (device_id with =, int8range(valid_from, valid_to) with &&)`.execute(db);
    return;
  }
  await sql`create trigger bindings_no_overlap before insert on bindings
    when new.valid_to is null or new.valid_to > new.valid_from
    begin
      select raise(abort, 'binding intervals overlap') where exists (
        select 1 from bindings b
        where (b.name_id = new.name_id or b.device_id = new.device_id)
          and (b.valid_to is null or b.valid_to > b.valid_from)
          and b.valid_from < coalesce(new.valid_to, 9223372036854775807)
          and new.valid_from < coalesce(b.valid_to, 9223372036854775807));
    end`.execute(db);
}

/** Names the first overlapping pairs already recorded (one statement for both dialects). */
async function refuseRecordedOverlaps(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ a: string; b: string }>`
    select x.id as a, y.id as b from bindings x join bindings y
      on x.id < y.id and (x.name_id = y.name_id or x.device_id = y.device_id)
    where (x.valid_to is null or x.valid_to > x.valid_from) and (y.valid_to is null or y.valid_to > y.valid_from)
      and x.valid_from < coalesce(y.valid_to, 9223372036854775807)
      and y.valid_from < coalesce(x.valid_to, 9223372036854775807)
    order by x.id, y.id limit 10`.execute(db);
  if (rows.length === 0) return;
  const pairs = rows.map((r) => `${r.a} overlaps ${r.b}`).join('; ');
  throw new Error(`binding history already holds overlapping intervals (${pairs}); settle them before upgrading`);
}
