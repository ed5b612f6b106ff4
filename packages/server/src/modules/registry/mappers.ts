import type { Binding, Device, DeviceStatus, Name } from '@fleetkey/protocol';
import { iso, isoOrNull } from '../../context/clock.js';
import type { BindingRow, DeviceRow, NameRow } from '../../store/schema.js';

export function toDevice(row: DeviceRow, name: string | null): Device {
  return {
    id: row.id,
    model: row.model,
    serials: row.serials === null ? {} : (JSON.parse(row.serials) as Record<string, string>),
    hardwareFingerprint: row.hw_fingerprint,
    status: row.status as DeviceStatus,
    statusReason: row.status_reason,
    name,
    installedVersion: row.installed_version,
    installedReleaseId: row.installed_release_id,
    installedAt: isoOrNull(row.installed_at),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export function toName(row: NameRow, open: BindingRow | undefined, aliases: string[]): Name {
  return {
    id: row.id,
    name: row.name,
    tags: JSON.parse(row.tags) as Record<string, string>,
    deviceId: open?.device_id ?? null,
    boundSince: open === undefined ? null : iso(open.valid_from),
    aliases,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export function toBinding(row: BindingRow, currentName: string): Binding {
  return {
    id: row.id,
    name: currentName,
    deviceId: row.device_id,
    from: iso(row.valid_from),
    to: isoOrNull(row.valid_to),
    bindReason: row.bind_reason,
    bindActor: row.bind_actor,
    unbindReason: row.unbind_reason,
    unbindActor: row.unbind_actor,
  };
}
