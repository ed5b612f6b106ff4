import { FleetkeyError } from '@fleetkey/protocol';
import { iso } from '../../context/clock.js';
import type { Store } from '../../store/open-store.js';
import { storedPayload } from './stored-payload.js';

export interface DataPoint {
  deviceId: string;
  name: string | null;
  receivedAt: string;
  payload: unknown;
}

/** Reads of what devices sent: diagnostics by name (across replacements), telemetry by device. */
export class DataService {
  constructor(private readonly store: Store) {}

  async diagnosticsByName(name: string, since: number, limit: number): Promise<DataPoint[]> {
    const key = await this.store.db.selectFrom('name_keys').select(['name_id', 'kind']).where('key', '=', name).executeTakeFirst();
    if (key === undefined) throw new FleetkeyError('NAME_NOT_FOUND', { detail: name });
    const rows = await this.store.db
      .selectFrom('diagnostics')
      .selectAll()
      .where('name_id', '=', key.name_id)
      .where('received_at', '>=', since)
      .orderBy('received_at', 'asc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ deviceId: r.device_id, name: r.name, receivedAt: iso(r.received_at), payload: storedPayload(r.payload) }));
  }

  /** Diagnostics of a device while it had no name: kept under the device, never lost. */
  async diagnosticsByDevice(deviceId: string, since: number, limit: number): Promise<DataPoint[]> {
    const rows = await this.store.db.selectFrom('diagnostics').selectAll().where('device_id', '=', deviceId).where('received_at', '>=', since).orderBy('received_at', 'asc').limit(limit).execute();
    return rows.map((r) => ({ deviceId: r.device_id, name: r.name, receivedAt: iso(r.received_at), payload: storedPayload(r.payload) }));
  }

  async telemetryByDevice(deviceId: string, since: number, limit: number): Promise<DataPoint[]> {
    const rows = await this.store.db.selectFrom('telemetry').selectAll().where('device_id', '=', deviceId).where('received_at', '>=', since).orderBy('received_at', 'asc').limit(limit).execute();
    return rows.map((r) => ({ deviceId: r.device_id, name: null, receivedAt: iso(r.received_at), payload: storedPayload(r.payload) }));
  }
}
