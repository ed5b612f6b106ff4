import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import {
  FleetkeyError,
  type CreateDeviceBody,
  type Device,
  type DeviceStatus,
  type DeviceStatusAction,
} from '@fleetkey/protocol';
import { canonicalJson } from '../audit/canonical-json.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import { isUniqueViolation, type Store, type Tx } from '../../store/open-store.js';
import type { DeviceRow } from '../../store/schema.js';
import { bindingInstant } from './binding-instant.js';
import { nextStatus } from './device-lifecycle.js';
import { toDevice } from './mappers.js';
import { carriesTag, parseTagFilter, tagLike, type TagFilter } from './tag-filter.js';

/** Informational component serials, hashed into one fingerprint that is cheap to compare. */
function hardwareFingerprint(serials: Record<string, string> | undefined): string | null {
  if (serials === undefined || Object.keys(serials).length === 0) return null;
  return createHash('sha256').update(canonicalJson(serials)).digest('hex');
}

/**
 * Runs inside the status change's transaction: lets another module (the CA revoking a device's
 * certificates) act atomically with it without the registry knowing that module.
 */
export type StatusHook = (w: Work, deviceId: string, from: DeviceStatus, to: DeviceStatus) => Promise<void>;

/** GET /v1/devices filters (the route schema DeviceListQuery has validated each). */
export interface DeviceListFilter {
  status?: DeviceStatus;
  installedVersion?: string;
  model?: string;
  q?: string;
  tag?: string;
  online?: 'true' | 'false';
  limit?: number;
  after?: string;
}

export class DeviceService {
  readonly #hooks: StatusHook[] = [];

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
  ) {}

  onStatusChange(hook: StatusHook): void {
    this.#hooks.push(hook);
  }

  async create(ctx: OpContext, body: CreateDeviceBody): Promise<Device> {
    // randomUUID is a CSPRNG v4 UUID (RFC 9562 §5.4): 122 random bits, no clock or MAC leak.
    const id = body.id ?? randomUUID();
    return this.uow.run(ctx, { action: 'device.create', subject: `device:${id}` }, async (w) => {
      const row: DeviceRow = {
        id,
        model: body.model ?? null,
        serials: body.serials === undefined ? null : JSON.stringify(body.serials),
        hw_fingerprint: hardwareFingerprint(body.serials),
        status: 'manufactured',
        status_reason: null,
        prior_status: null,
        installed_version: null,
        installed_release_id: null,
        installed_at: null,
        created_at: w.now,
        updated_at: w.now,
      };
      try {
        await w.tx.insertInto('devices').values(row).execute();
      } catch (e) {
        // The primary key keeps every id ever registered, retired or not: ids are never reused.
        if (isUniqueViolation(e)) throw new FleetkeyError('DEVICE_EXISTS', { detail: `device ${id} exists` });
        throw e;
      }
      w.note({ model: row.model, minted: body.id === undefined });
      await w.emit('device.created', `device:${id}`, { deviceId: id, model: row.model });
      return toDevice(row, null);
    });
  }

  async get(id: string): Promise<Device> {
    const row = await this.store.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new FleetkeyError('DEVICE_NOT_FOUND', { detail: id });
    return toDevice(row, await this.currentName(this.store.db, id));
  }

  async list(filter: DeviceListFilter): Promise<Device[]> {
    const limit = filter.limit ?? 100;
    const tag = parseTagFilter(filter.tag);
    if (tag === undefined) return (await this.listPage(filter, limit, filter.after, undefined)).map(({ bound_name, bound_tags: _, ...row }) => toDevice(row, bound_name ?? null));
    // A tag filter: the LIKE is exact by construction (tag-filter.ts), the parsed check behind it
    // only drops rows if that ever stops holding; keyset pages continue after the last row read.
    const out: Device[] = [];
    let after = filter.after;
    for (;;) {
      const rows = await this.listPage(filter, limit, after, tag);
      for (const { bound_name, bound_tags, ...row } of rows) if (carriesTag(bound_tags, tag)) out.push(toDevice(row, bound_name ?? null));
      if (rows.length < limit || out.length >= limit) break;
      after = rows[rows.length - 1]!.id;
    }
    return out.slice(0, limit);
  }

  private async listPage(filter: DeviceListFilter, limit: number, after: string | undefined, tag: TagFilter | undefined) {
    // Online: a device_presence row with a live session (cluster-wide: each node records its own
    // sessions and dead nodes' rows are reaped, see gateway/presence-recorder.ts); a primary-key probe.
    const online =
      filter.online === undefined
        ? undefined
        : sql<boolean>`${sql.raw(filter.online === 'true' ? '' : 'not ')}exists (select 1 from device_presence where device_presence.device_id = ${sql.ref('devices.id')} and device_presence.connected = 1)`;
    let q = this.store.db
      .selectFrom('devices')
      .leftJoin('bindings', (j) => j.onRef('bindings.device_id', '=', 'devices.id').on('bindings.valid_to', 'is', null))
      .leftJoin('names', 'names.id', 'bindings.name_id')
      .selectAll('devices')
      .select(['names.name as bound_name', 'names.tags as bound_tags'])
      .orderBy('devices.id', 'asc');
    if (filter.status !== undefined) q = q.where('devices.status', '=', filter.status);
    if (filter.installedVersion !== undefined) q = q.where('devices.installed_version', '=', filter.installedVersion);
    if (after !== undefined) q = q.where('devices.id', '>', after);
    if (filter.model !== undefined) q = q.where('devices.model', '=', filter.model);
    // Tag: the WHERE on the joined name turns both left joins inner (both stores reduce them), so
    // the planner may drive from names and reach the device through the open-binding index.
    if (tag !== undefined) q = q.where(tagLike('names.tags', tag));
    if (online !== undefined) q = q.where(online);
    if (filter.q === undefined) return q.limit(limit).execute();
    // Search: id prefix OR bound-name prefix, as two queries each able to use its own index (one
    // OR across both would scan the table), merged in id order. The schema limits q to
    // [A-Za-z0-9_.:/-], so only LIKE's own `_` needs escaping.
    const like = `${filter.q.replaceAll('\\', '\\\\').replaceAll('_', '\\_').replaceAll('%', '\\%')}%`;
    const hex = filter.q.toLowerCase();
    // A hex prefix of the id's first group is a primary-key range: 'g' sorts after every hex digit
    // (and, in PostgreSQL's locale collations, hyphens only break ties after the letters and digits).
    // Anything but hex digits and hyphens cannot begin an id: then only names are searched.
    const byId = /^[0-9a-f]{1,8}$/.test(hex)
      ? q.where('devices.id', '>=', hex).where('devices.id', '<', `${hex}g`)
      : /^[0-9a-f-]+$/.test(hex)
        ? q.where(sql<boolean>`${sql.ref('devices.id')} like ${like.toLowerCase()} escape '\\'`)
        : null;
    // Names are lower-case by schema ([a-z0-9._-]), so the query is too. On SQLite, whose LIKE is
    // case-insensitive and so cannot use the binary names index (a 3-character search took 0.7 s
    // over 100,000 names), the prefix is a range on that index: every name character sorts
    // before '~', so [q, q~) holds exactly the names that start with q. PostgreSQL keeps LIKE: a
    // locale collation does not order prefixes as ranges.
    const lower = filter.q.toLowerCase();
    const namePrefix =
      this.store.dialect === 'sqlite'
        ? sql<boolean>`${sql.ref('names.name')} >= ${lower} and ${sql.ref('names.name')} < ${`${lower}~`}`
        : sql<boolean>`${sql.ref('names.name')} like ${like.toLowerCase()} escape '\\'`;
    // Driven from the names table (inner joins): a fleet has as many names as devices at most,
    // and the open binding and the device are then one indexed lookup each.
    let byName = this.store.db
      .selectFrom('names')
      .innerJoin('bindings', (j) => j.onRef('bindings.name_id', '=', 'names.id').on('bindings.valid_to', 'is', null))
      .innerJoin('devices', 'devices.id', 'bindings.device_id')
      .selectAll('devices')
      .select(['names.name as bound_name', 'names.tags as bound_tags'])
      .where(namePrefix)
      .orderBy('devices.id', 'asc');
    if (filter.status !== undefined) byName = byName.where('devices.status', '=', filter.status);
    if (after !== undefined) byName = byName.where('devices.id', '>', after);
    if (filter.model !== undefined) byName = byName.where('devices.model', '=', filter.model);
    if (filter.installedVersion !== undefined) byName = byName.where('devices.installed_version', '=', filter.installedVersion);
    if (tag !== undefined) byName = byName.where(tagLike('names.tags', tag));
    if (online !== undefined) byName = byName.where(online);
    const [a, b] = await Promise.all([byId === null ? [] : byId.limit(limit).execute(), byName.limit(limit).execute()]);
    const merged = new Map([...a, ...b].map((r) => [r.id, r]));
    return [...merged.values()].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)).slice(0, limit);
  }

  /** Devices by status (the console's overview): one GROUP BY over the status index. */
  async summary(): Promise<{ total: number; byStatus: Record<string, number> }> {
    const rows = await this.store.db.selectFrom('devices').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
    const byStatus: Record<string, number> = {};
    for (const r of rows) byStatus[r.status] = Number(r.n);
    return { total: Object.values(byStatus).reduce((a, b) => a + b, 0), byStatus };
  }

  async changeStatus(ctx: OpContext, id: string, action: DeviceStatusAction, reason: string | undefined): Promise<Device> {
    return this.uow.run(ctx, { action: `device.${action}`, subject: `device:${id}` }, async (w) => {
      const row = await this.lockDevice(w.tx, id);
      const updated = await this.applyStatus(w, row, action, reason);
      return toDevice(updated, await this.currentName(w.tx, id));
    });
  }

  /**
   * Applies a lifecycle action inside an open unit of work. Used by changeStatus and by the
   * name replacement (`--revoke-old`), so both paths obey the same table and emit the same event.
   */
  async applyStatus(w: Work, row: DeviceRow, action: DeviceStatusAction, reason: string | undefined): Promise<DeviceRow> {
    const from = row.status as DeviceStatus;
    const to = nextStatus(from, action, row.prior_status as DeviceStatus | null);
    if (to === null) {
      throw new FleetkeyError('DEVICE_STATUS_TRANSITION', { detail: `${action} not allowed from ${from}` });
    }
    const updated: DeviceRow = {
      ...row,
      status: to,
      status_reason: reason ?? null,
      prior_status: action === 'suspend' ? from : null,
      updated_at: w.now,
    };
    const res = await w.tx
      .updateTable('devices')
      .set({ status: to, status_reason: updated.status_reason, prior_status: updated.prior_status, updated_at: w.now })
      .where('id', '=', row.id)
      .where('status', '=', from)
      .executeTakeFirst();
    if (res.numUpdatedRows !== 1n) throw new FleetkeyError('CONFLICT', { detail: `device ${row.id} changed concurrently` });
    if (action === 'retire') {
      // A retired unit leaves the fleet: its name is freed so it can be bound to a successor. The
      // caller holds the device's lock, which every writer of its bindings takes.
      await w.tx
        .updateTable('bindings')
        .set({ valid_to: await bindingInstant(w, [], [row.id]), unbind_reason: 'device retired', unbind_actor: w.ctx.actor.label })
        .where('device_id', '=', row.id)
        .where('valid_to', 'is', null)
        .execute();
    }
    for (const hook of this.#hooks) await hook(w, row.id, from, to);
    w.note({ from, to, ...(reason === undefined ? {} : { reason }) });
    await w.emit('device.status_changed', `device:${row.id}`, { deviceId: row.id, from, to, reason: reason ?? null });
    return updated;
  }

  /** First successful provisioning: manufactured → provisioned (not an operator action). */
  async markProvisioned(w: Work, row: DeviceRow): Promise<void> {
    if (row.status !== 'manufactured') return;
    await w.tx.updateTable('devices').set({ status: 'provisioned', updated_at: w.now }).where('id', '=', row.id).where('status', '=', 'manufactured').execute();
    await w.emit('device.status_changed', `device:${row.id}`, { deviceId: row.id, from: 'manufactured', to: 'provisioned', reason: 'provisioned' });
  }

  /** Registers a device inside another operation's unit of work (a group enrollment admitting it). */
  async registerInWork(w: Work, id: string, model: string | null): Promise<DeviceRow> {
    const row: DeviceRow = { id, model, serials: null, hw_fingerprint: null, status: 'manufactured', status_reason: null, prior_status: null, installed_version: null, installed_release_id: null, installed_at: null, created_at: w.now, updated_at: w.now };
    await w.tx.insertInto('devices').values(row).execute();
    await w.emit('device.created', `device:${id}`, { deviceId: id, model });
    return row;
  }

  /** Reads a device for update: on PostgreSQL the row lock orders concurrent status changes. */
  async lockDevice(tx: Tx, id: string): Promise<DeviceRow> {
    let q = tx.selectFrom('devices').selectAll().where('id', '=', id);
    if (this.store.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (row === undefined) throw new FleetkeyError('DEVICE_NOT_FOUND', { detail: id });
    return row;
  }

  /** The name the device holds now (inside a transaction, pass its tx: SQLite has one connection). */
  async currentName(db: Tx | Store['db'], deviceId: string): Promise<string | null> {
    const r = await db
      .selectFrom('bindings')
      .innerJoin('names', 'names.id', 'bindings.name_id')
      .select('names.name')
      .where('bindings.device_id', '=', deviceId)
      .where('bindings.valid_to', 'is', null)
      .executeTakeFirst();
    return r?.name ?? null;
  }
}
