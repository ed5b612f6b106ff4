import { randomUUID } from 'node:crypto';
import { FleetkeyError, type Binding, type Name, type NameHistory, type ReplaceBody, type ReplaceResult } from '@fleetkey/protocol';
import { sql } from 'kysely';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import { isOverlapViolation, isUniqueViolation, type Store, type Tx } from '../../store/open-store.js';
import type { BindingRow, DeviceRow, NameRow } from '../../store/schema.js';
import { bindingInstant } from './binding-instant.js';
import type { DeviceService } from './device-service.js';
import { UNBINDABLE } from './device-lifecycle.js';
import { toBinding } from './mappers.js';
import type { NameService } from './name-service.js';

type Db = Tx | Store['db'];

export class BindingService {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly names: NameService,
    private readonly devices: DeviceService,
  ) {}

  async bind(ctx: OpContext, name: string, deviceId: string, reason: string | undefined): Promise<Name> {
    return this.uow.run(ctx, { action: 'name.bind', subject: `name:${name}` }, async (w) => {
      const nameRow = await this.names.resolve(w.tx, name, true);
      await this.bindInWork(w, nameRow, deviceId, reason);
      w.note({ deviceId, ...(reason === undefined ? {} : { reason }) });
      return this.names.view(w.tx, nameRow);
    });
  }

  /**
   * Binds inside a unit of work another operation holds (provisioning's allocation). The caller
   * holds the name's row lock (resolve with lock, or a name it created in this work): no other
   * writer can open a binding on it until we commit.
   */
  async bindInWork(w: Work, nameRow: NameRow, deviceId: string, reason: string | undefined): Promise<void> {
    if ((await this.openForName(w.tx, nameRow.id)) !== undefined) {
      throw new FleetkeyError('NAME_ALREADY_BOUND', { detail: nameRow.name });
    }
    await this.checkBindable(w.tx, await this.devices.lockDevice(w.tx, deviceId));
    await this.open(w, nameRow.id, deviceId, reason, await bindingInstant(w, [nameRow.id], [deviceId]));
    await w.emit('name.bound', `name:${nameRow.name}`, { nameId: nameRow.id, name: nameRow.name, deviceId, reason: reason ?? null });
  }

  /**
   * Closes the device's open binding, if any, inside the caller's unit of work; returns the name it
   * had. The caller holds the device's row lock (lockDevice): every writer of its bindings takes it.
   */
  async unbindDeviceInWork(w: Work, deviceId: string, reason: string): Promise<string | null> {
    const current = await w.tx.selectFrom('bindings').selectAll().where('device_id', '=', deviceId).where('valid_to', 'is', null).executeTakeFirst();
    if (current === undefined) return null;
    await this.close(w, current, reason, await bindingInstant(w, [current.name_id], [deviceId]));
    const nameRow = await w.tx.selectFrom('names').select(['id', 'name']).where('id', '=', current.name_id).executeTakeFirstOrThrow();
    await w.emit('name.unbound', `name:${nameRow.name}`, { nameId: nameRow.id, name: nameRow.name, deviceId, reason });
    return nameRow.name;
  }

  async unbind(ctx: OpContext, name: string, reason: string | undefined): Promise<Name> {
    return this.uow.run(ctx, { action: 'name.unbind', subject: `name:${name}` }, async (w) => {
      const nameRow = await this.names.resolve(w.tx, name, true);
      const current = await this.openForName(w.tx, nameRow.id);
      if (current === undefined) throw new FleetkeyError('NAME_NOT_BOUND', { detail: name });
      // The device's row lock too: a writer that binds that device elsewhere must see us end first.
      await this.devices.lockDevice(w.tx, current.device_id);
      await this.close(w, current, reason, await bindingInstant(w, [nameRow.id], [current.device_id]));
      w.note({ deviceId: current.device_id });
      await w.emit('name.unbound', `name:${name}`, { nameId: nameRow.id, name, deviceId: current.device_id, reason: reason ?? null });
      return this.names.view(w.tx, nameRow);
    });
  }

  /**
   * Replacement, in one transaction: close the old binding, optionally revoke the old device,
   * open the new binding at the same instant, emit name.rebound, audit. A replace names the
   * device it replaces (`expectedDeviceId`, required by the API schema) and commits only if that
   * device still holds the name when the replace holds the name's lock: of overlapping replaces
   * of one binding exactly one commits, the others get BINDING_CONFLICT and change nothing, and
   * no replace ever takes the name from (or revokes) a device its caller did not name.
   */
  async replace(ctx: OpContext, name: string, body: ReplaceBody): Promise<ReplaceResult> {
    return this.uow.run(ctx, { action: 'name.replace', subject: `name:${name}` }, async (w) => {
      const nameRow = await this.names.resolve(w.tx, name, true);
      const current = await this.openForName(w.tx, nameRow.id);
      if (current === undefined) throw new FleetkeyError('NAME_NOT_BOUND', { detail: name });
      if (current.device_id !== body.expectedDeviceId) {
        throw new FleetkeyError('BINDING_CONFLICT', { detail: `${name} is bound to ${current.device_id}, not ${body.expectedDeviceId}` });
      }
      if (current.device_id === body.deviceId) throw new FleetkeyError('SAME_DEVICE', { detail: name });
      const [old, next] = await this.lockPair(w.tx, current.device_id, body.deviceId);
      await this.checkBindable(w.tx, next);
      const at = await bindingInstant(w, [nameRow.id], [old.id, next.id]);
      const reason = body.reason ?? 'replacement';
      await this.close(w, current, reason, at);
      let revoked = false;
      if (body.revokeOld === true && old.status !== 'revoked' && old.status !== 'retired') {
        await this.devices.applyStatus(w, old, 'revoke', `replaced under ${name}: ${reason}`);
        revoked = true;
      }
      await this.open(w, nameRow.id, body.deviceId, reason, at);
      w.note({ from: current.device_id, to: body.deviceId, revokedOld: revoked, reason });
      await w.emit('name.rebound', `name:${name}`, {
        nameId: nameRow.id,
        name,
        from: current.device_id,
        to: body.deviceId,
        oldDeviceRevoked: revoked,
        reason,
      });
      return { name: await this.names.view(w.tx, nameRow), previousDeviceId: current.device_id, oldDeviceRevoked: revoked };
    });
  }

  async history(name: string): Promise<NameHistory> {
    const nameRow = await this.names.resolve(this.store.db, name);
    const rows = await this.store.db
      .selectFrom('bindings')
      .selectAll()
      .where('name_id', '=', nameRow.id)
      .orderBy('valid_from', 'asc')
      // Only history written before migration 007 can share a start: the open binding last, on
      // both dialects (SQLite sorts NULL first, PostgreSQL last).
      .orderBy(sql`valid_to is null`)
      .orderBy('valid_to', 'asc')
      .execute();
    const view = await this.names.view(this.store.db, nameRow);
    return { name: nameRow.name, aliases: view.aliases, bindings: rows.map((r) => toBinding(r, nameRow.name)) };
  }

  /** The names a device held over time (the console's device page); uses bindings_device_time. */
  async historyOfDevice(deviceId: string): Promise<Binding[]> {
    const rows = await this.store.db
      .selectFrom('bindings')
      .innerJoin('names', 'names.id', 'bindings.name_id')
      .selectAll('bindings')
      .select('names.name as current_name')
      .where('bindings.device_id', '=', deviceId)
      .orderBy('bindings.valid_from', 'asc')
      .execute();
    return rows.map(({ current_name, ...r }) => toBinding(r, current_name));
  }

  /** Which device held the name (by name id) at `at` — the routing query; uses bindings_name_time. */
  async deviceAt(db: Db, nameId: string, at: number): Promise<string | null> {
    const r = await db
      .selectFrom('bindings')
      .select('device_id')
      .where('name_id', '=', nameId)
      .where('valid_from', '<=', at)
      .where((eb) => eb.or([eb('valid_to', 'is', null), eb('valid_to', '>', at)]))
      .orderBy('valid_from', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r?.device_id ?? null;
  }

  /** Which name the device held at `at` (current string of that name); uses bindings_device_time. */
  async nameAt(db: Db, deviceId: string, at: number): Promise<{ nameId: string; name: string } | null> {
    const r = await db
      .selectFrom('bindings')
      .innerJoin('names', 'names.id', 'bindings.name_id')
      .select(['names.id as nameId', 'names.name as name'])
      .where('bindings.device_id', '=', deviceId)
      .where('bindings.valid_from', '<=', at)
      .where((eb) => eb.or([eb('bindings.valid_to', 'is', null), eb('bindings.valid_to', '>', at)]))
      .orderBy('bindings.valid_from', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ?? null;
  }

  async nameAtDevice(deviceId: string, at: number): Promise<{ nameId: string; name: string } | null> {
    return this.nameAt(this.store.db, deviceId, at);
  }

  /** The name the device holds now, inside a unit of work. */
  currentNameOf(w: Work, deviceId: string): Promise<string | null> {
    return this.devices.currentName(w.tx, deviceId);
  }

  async deviceAtName(name: string, at: number): Promise<string | null> {
    const row = await this.names.resolve(this.store.db, name);
    return this.deviceAt(this.store.db, row.id, at);
  }

  private async openForName(db: Db, nameId: string): Promise<BindingRow | undefined> {
    return db.selectFrom('bindings').selectAll().where('name_id', '=', nameId).where('valid_to', 'is', null).executeTakeFirst();
  }

  /**
   * Locks two devices in id order, whatever their roles: two replaces that swap devices between
   * names (each holding its own name's lock) then queue instead of deadlocking.
   */
  private async lockPair(tx: Tx, oldId: string, newId: string): Promise<[DeviceRow, DeviceRow]> {
    const first = await this.devices.lockDevice(tx, oldId < newId ? oldId : newId);
    const second = await this.devices.lockDevice(tx, oldId < newId ? newId : oldId);
    return first.id === oldId ? [first, second] : [second, first];
  }

  /** `device` must be locked by the caller: its status and open binding cannot change under us. */
  private async checkBindable(tx: Tx, device: DeviceRow): Promise<void> {
    if (UNBINDABLE.includes(device.status as never)) {
      throw new FleetkeyError('DEVICE_NOT_BINDABLE', { detail: `${device.id} is ${device.status}` });
    }
    const held = await tx.selectFrom('bindings').select('id').where('device_id', '=', device.id).where('valid_to', 'is', null).executeTakeFirst();
    if (held !== undefined) throw new FleetkeyError('DEVICE_ALREADY_BOUND', { detail: device.id });
  }

  /** Opens a binding at `at` (from bindingInstant, under the name's and the device's locks). */
  private async open(w: Work, nameId: string, deviceId: string, reason: string | undefined, at: number): Promise<void> {
    try {
      await w.tx
        .insertInto('bindings')
        .values({
          id: randomUUID(),
          name_id: nameId,
          device_id: deviceId,
          valid_from: at,
          valid_to: null,
          bind_reason: reason ?? null,
          bind_actor: w.ctx.actor.label,
          unbind_reason: null,
          unbind_actor: null,
        })
        .execute();
    } catch (e) {
      // The partial unique indexes or the no-overlap constraint (migration 007) caught a writer
      // that did not take the locks: refuse rather than fail.
      if (isUniqueViolation(e) || isOverlapViolation(e)) throw new FleetkeyError('BINDING_CONFLICT', { detail: `open binding exists for ${nameId} or ${deviceId}` });
      throw e;
    }
  }

  /** Closes a binding at `at` (from bindingInstant, under the device's lock: never before its start). */
  private async close(w: Work, binding: BindingRow, reason: string | undefined, at: number): Promise<void> {
    const res = await w.tx
      .updateTable('bindings')
      .set({ valid_to: at, unbind_reason: reason ?? null, unbind_actor: w.ctx.actor.label })
      .where('id', '=', binding.id)
      .where('valid_to', 'is', null)
      .executeTakeFirst();
    if (res.numUpdatedRows !== 1n) throw new FleetkeyError('BINDING_CONFLICT', { detail: `binding ${binding.id} already closed` });
  }
}
