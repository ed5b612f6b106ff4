import { randomUUID } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import { iso, isoOrNull } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { CommandRow } from '../../store/schema.js';
import { storedPayload } from '../telemetry/stored-payload.js';

export interface CommandView {
  id: string;
  name: string;
  type: string;
  payload: unknown;
  status: string;
  createdAt: string;
  expiresAt: string;
  deliveredTo: string | null;
  deliveredAt: string | null;
  ackedAt: string | null;
  result: unknown;
  completedAt: string | null;
}

export const commandView = (r: CommandRow, now: number): CommandView => ({
  id: r.id,
  name: r.name,
  type: r.type,
  payload: JSON.parse(r.payload) as unknown,
  status: (r.status === 'pending' || r.status === 'delivered') && r.expires_at <= now ? 'expired' : r.status,
  createdAt: iso(r.created_at),
  expiresAt: iso(r.expires_at),
  deliveredTo: r.delivered_to,
  deliveredAt: isoOrNull(r.delivered_at),
  ackedAt: isoOrNull(r.acked_at),
  // The result came from a device (a PUBLISH or a Will): read robustly, like every device payload.
  result: storedPayload(r.result),
  completedAt: isoOrNull(r.completed_at),
});

/** What a device receives on devices/{id}/commands/{commandId}. */
export const wirePayload = (r: CommandRow): Buffer =>
  Buffer.from(JSON.stringify({ id: r.id, type: r.type, payload: JSON.parse(r.payload) as unknown, expiresAt: iso(r.expires_at) }));

/**
 * Feedback is addressed to a NAME and delivered to whichever device holds it at delivery time:
 * persisted, pushed QoS 1, redelivered on reconnect until acknowledged or expired. A command the
 * old device had not acknowledged when the name moved goes to the new device, never to the old.
 */
export class CommandService {
  /** Set by the composition root once the gateway runs: push a new command to its online holder. */
  onSent: (row: CommandRow) => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly clock: Clock,
  ) {}

  async send(ctx: OpContext, name: string, type: string, payload: unknown, ttlMs: number): Promise<CommandRow> {
    return this.uow.run(ctx, { action: 'command.send', subject: `name:${name}` }, async (w) => {
      const key = await w.tx.selectFrom('name_keys').select(['name_id', 'kind']).where('key', '=', name).executeTakeFirst();
      if (key === undefined || key.kind !== 'current') throw new FleetkeyError('NAME_NOT_FOUND', { detail: name });
      const row: CommandRow = {
        id: randomUUID(),
        name_id: key.name_id,
        name,
        type,
        payload: JSON.stringify(payload ?? null),
        status: 'pending',
        created_at: w.now,
        created_by: ctx.actor.label,
        expires_at: w.now + ttlMs,
        delivered_to: null,
        delivered_at: null,
        acked_at: null,
        result: null,
        completed_at: null,
      };
      await w.tx.insertInto('commands').values(row).execute();
      w.note({ commandId: row.id, type, ttlMs });
      return row;
    }).then((row) => {
      this.onSent(row);
      return row;
    });
  }

  /** The device holding the command's name now, if any. */
  async holderOf(nameId: string): Promise<string | null> {
    const b = await this.store.db.selectFrom('bindings').select('device_id').where('name_id', '=', nameId).where('valid_to', 'is', null).executeTakeFirst();
    return b?.device_id ?? null;
  }

  async show(id: string): Promise<CommandView> {
    const r = await this.store.db.selectFrom('commands').selectAll().where('id', '=', id).executeTakeFirst();
    if (r === undefined) throw new FleetkeyError('NOT_FOUND', { detail: `command ${id}` });
    return commandView(r, this.clock.now());
  }

  /** Pending, unexpired commands for the name this device holds now; marks them as sent to it. */
  async takeFor(deviceId: string): Promise<CommandRow[]> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const b = await tx.selectFrom('bindings').select('name_id').where('device_id', '=', deviceId).where('valid_to', 'is', null).executeTakeFirst();
      if (b === undefined) return [];
      const rows = await tx
        .selectFrom('commands')
        .selectAll()
        .where('name_id', '=', b.name_id)
        .where('status', '=', 'pending')
        .where('expires_at', '>', now)
        .where((eb) => eb.or([eb('delivered_to', 'is', null), eb('delivered_to', '=', deviceId)]))
        .orderBy('created_at')
        .limit(100)
        .execute();
      if (rows.length > 0) {
        await tx.updateTable('commands').set({ delivered_to: deviceId, delivered_at: now }).where('id', 'in', rows.map((r) => r.id)).execute();
      }
      return rows.map((r) => ({ ...r, delivered_to: deviceId, delivered_at: now }));
    });
  }

  async acked(deviceId: string, commandId: string): Promise<void> {
    await this.store.db
      .updateTable('commands')
      .set({ status: 'delivered', acked_at: this.clock.now() })
      .where('id', '=', commandId)
      .where('delivered_to', '=', deviceId)
      .where('status', '=', 'pending')
      .execute();
  }

  /** After a replacement: what the old device had not acknowledged is re-targeted at the name's new holder. */
  async retarget(nameId: string): Promise<void> {
    await this.store.db.updateTable('commands').set({ delivered_to: null, delivered_at: null }).where('name_id', '=', nameId).where('status', '=', 'pending').execute();
  }
}
