import { randomUUID } from 'node:crypto';
import { FleetkeyError, type CreateNameBody, type Name } from '@fleetkey/protocol';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import { isUniqueViolation, type Store, type Tx } from '../../store/open-store.js';
import type { NameRow } from '../../store/schema.js';
import { toName } from './mappers.js';
import { carriesTag, parseTagFilter, tagLike } from './tag-filter.js';

type Db = Tx | Store['db'];

export class NameService {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
  ) {}

  async create(ctx: OpContext, body: CreateNameBody): Promise<Name> {
    return this.uow.run(ctx, { action: 'name.create', subject: `name:${body.name}` }, async (w) => {
      const row = await this.createInWork(w, body.name, body.tags ?? {});
      w.note({ tags: body.tags ?? {} });
      return toName(row, undefined, []);
    });
  }

  /** Creates a name inside a unit of work another operation holds (provisioning's allocation). */
  async createInWork(w: Work, name: string, tags: Record<string, string>): Promise<NameRow> {
    const row: NameRow = { id: randomUUID(), name, tags: JSON.stringify(tags), created_at: w.now, updated_at: w.now };
    await w.tx.insertInto('names').values(row).execute().catch(nameTaken(name));
    await w.tx
      .insertInto('name_keys')
      .values({ key: name, name_id: row.id, kind: 'current', created_at: w.now, retired_at: null })
      .execute()
      .catch(nameTaken(name));
    await w.emit('name.created', `name:${name}`, { nameId: row.id, name, tags });
    return row;
  }

  /** The current row of a name string, or undefined (an alias or an unknown string). */
  async findCurrent(w: Work, name: string): Promise<NameRow | undefined> {
    const key = await w.tx.selectFrom('name_keys').selectAll().where('key', '=', name).executeTakeFirst();
    if (key === undefined) return undefined;
    if (key.kind !== 'current') throw new FleetkeyError('NAME_EXISTS', { detail: `${name} is kept as an alias` });
    return this.resolve(w.tx, name, true);
  }

  async show(name: string): Promise<Name> {
    const row = await this.resolve(this.store.db, name);
    return this.view(this.store.db, row);
  }

  async list(filter: { limit?: number; after?: string; tag?: string }): Promise<Name[]> {
    const limit = filter.limit ?? 100;
    const tag = parseTagFilter(filter.tag);
    const out: NameRow[] = [];
    let after = filter.after;
    // Keyset pages: a tag filter is a LIKE on the stored JSON text (the same on both stores; `_`
    // escaped, `%` cannot occur in a tag), then checked exactly on the parsed tags.
    for (;;) {
      let q = this.store.db.selectFrom('names').selectAll().orderBy('name', 'asc');
      if (after !== undefined) q = q.where('name', '>', after);
      if (tag !== undefined) q = q.where(tagLike('tags', tag));
      const rows = await q.limit(limit).execute();
      for (const r of rows) if (tag === undefined || carriesTag(r.tags, tag)) out.push(r);
      if (tag === undefined || rows.length < limit || out.length >= limit) break;
      after = rows[rows.length - 1]!.name;
    }
    return Promise.all(out.slice(0, limit).map((r) => this.view(this.store.db, r)));
  }

  async rename(ctx: OpContext, oldName: string, newName: string): Promise<Name> {
    return this.uow.run(ctx, { action: 'name.rename', subject: `name:${oldName}` }, async (w) => {
      const row = await this.resolve(w.tx, oldName, true);
      // The old string stays in name_keys as an alias: it can never be taken by another name,
      // and a lookup of it answers where the name went.
      await w.tx
        .insertInto('name_keys')
        .values({ key: newName, name_id: row.id, kind: 'current', created_at: w.now, retired_at: null })
        .execute()
        .catch(nameTaken(newName));
      await w.tx.updateTable('name_keys').set({ kind: 'alias', retired_at: w.now }).where('key', '=', oldName).execute();
      const upd = await w.tx
        .updateTable('names')
        .set({ name: newName, updated_at: w.now })
        .where('id', '=', row.id)
        .where('name', '=', oldName)
        .executeTakeFirst();
      if (upd.numUpdatedRows !== 1n) throw new FleetkeyError('CONFLICT', { detail: `name ${oldName} changed concurrently` });
      w.note({ from: oldName, to: newName });
      await w.emit('name.renamed', `name:${newName}`, { nameId: row.id, from: oldName, to: newName });
      return this.view(w.tx, { ...row, name: newName, updated_at: w.now });
    });
  }

  /**
   * Finds a name by its current string. An alias answers NAME_MOVED with where it went;
   * `lock` takes the row lock that orders concurrent binding changes on PostgreSQL.
   */
  async resolve(db: Db, name: string, lock = false): Promise<NameRow> {
    const key = await db.selectFrom('name_keys').selectAll().where('key', '=', name).executeTakeFirst();
    if (key === undefined) throw new FleetkeyError('NAME_NOT_FOUND', { detail: name });
    if (key.kind === 'alias') {
      const current = await db.selectFrom('names').select('name').where('id', '=', key.name_id).executeTakeFirstOrThrow();
      throw new FleetkeyError('NAME_MOVED', { detail: `${name} → ${current.name}`, extra: { movedTo: current.name } });
    }
    let q = db.selectFrom('names').selectAll().where('id', '=', key.name_id);
    if (lock && this.store.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    // Between the two reads a concurrent rename may have moved the name.
    if (row === undefined || row.name !== name) throw new FleetkeyError('CONFLICT', { detail: `name ${name} changed concurrently` });
    return row;
  }

  async view(db: Db, row: NameRow): Promise<Name> {
    const open = await db
      .selectFrom('bindings')
      .selectAll()
      .where('name_id', '=', row.id)
      .where('valid_to', 'is', null)
      .executeTakeFirst();
    const aliases = await db
      .selectFrom('name_keys')
      .select('key')
      .where('name_id', '=', row.id)
      .where('kind', '=', 'alias')
      .orderBy('created_at', 'asc')
      .execute();
    return toName(row, open, aliases.map((a) => a.key));
  }
}

function nameTaken(name: string): (e: unknown) => never {
  return (e) => {
    if (isUniqueViolation(e)) throw new FleetkeyError('NAME_EXISTS', { detail: `${name} is taken or kept as an alias` });
    throw e;
  };
}
