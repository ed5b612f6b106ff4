import { FleetkeyError, type DeviceEvidence, type EvidenceRecord } from '@fleetkey/protocol';
import { iso, isoOrNull } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store, Tx } from '../../store/open-store.js';
import type { DeviceEvidenceRow } from '../../store/schema.js';
import type { DeviceService } from '../registry/device-service.js';

function toRecord(r: DeviceEvidenceRow): EvidenceRecord {
  return {
    method: r.method,
    identity: JSON.parse(r.identity) as Record<string, string>,
    seen: r.seen === null ? {} : (JSON.parse(r.seen) as Record<string, string>),
    enrollmentId: r.enrollment_id,
    recordedAt: iso(r.recorded_at),
    lastSeenAt: iso(r.last_seen_at),
    resetAt: isoOrNull(r.reset_at),
    resetReason: r.reset_reason,
    resetBy: r.reset_actor,
  };
}

/**
 * The operator's side of evidence binding: what proved each device, and the one way to change it
 * (a repaired robot with a new TPM or a new IDevID). A reset is explicit, audited with its reason
 * and the evidence it released; the next admission records the new evidence.
 */
export class EvidenceService {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly devices: DeviceService,
  ) {}

  async show(deviceId: string): Promise<DeviceEvidence> {
    const device = await this.store.db.selectFrom('devices').select('id').where('id', '=', deviceId).executeTakeFirst();
    if (device === undefined) throw new FleetkeyError('DEVICE_NOT_FOUND', { detail: deviceId });
    return this.read(this.store.db, deviceId);
  }

  async reset(ctx: OpContext, deviceId: string, reason: string): Promise<DeviceEvidence> {
    return this.uow.run(ctx, { action: 'device.evidence_reset', subject: `device:${deviceId}` }, async (w) => {
      // Under the device's lock, as an admission is: a reset and an admission do not interleave.
      await this.devices.lockDevice(w.tx, deviceId);
      const current = await w.tx.selectFrom('device_evidence').selectAll().where('device_id', '=', deviceId).where('reset_at', 'is', null).executeTakeFirst();
      if (current === undefined) throw new FleetkeyError('DEVICE_EVIDENCE_NOT_RECORDED', { detail: `device ${deviceId} has no current evidence` });
      await w.tx.updateTable('device_evidence').set({ reset_at: w.now, reset_reason: reason, reset_actor: ctx.actor.label }).where('id', '=', current.id).execute();
      const previous = toRecord(current);
      const released = { method: previous.method, identity: previous.identity, enrollmentId: previous.enrollmentId };
      w.note({ reason, previous: released });
      await w.emit('device.evidence_reset', `device:${deviceId}`, { deviceId, reason, previous: released });
      return this.read(w.tx, deviceId);
    });
  }

  private async read(db: Tx | Store['db'], deviceId: string): Promise<DeviceEvidence> {
    const rows = await db.selectFrom('device_evidence').selectAll().where('device_id', '=', deviceId).orderBy('recorded_at', 'desc').orderBy('id').execute();
    const current = rows.find((r) => r.reset_at === null);
    return {
      deviceId,
      current: current === undefined ? null : toRecord(current),
      history: rows.filter((r) => r.reset_at !== null).sort((a, b) => (b.reset_at ?? 0) - (a.reset_at ?? 0)).map(toRecord),
    };
  }
}
