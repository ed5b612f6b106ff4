import type { DeviceMessageKind } from '@fleetkey/protocol';
import { GroupCommit } from '../../context/group-commit.js';
import { insertRows } from '../../store/bulk-insert.js';
import type { Store } from '../../store/open-store.js';
import type { IngestMetrics } from '../metrics/metrics.js';

export interface Incoming {
  readonly deviceId: string;
  readonly kind: DeviceMessageKind;
  readonly commandId?: string;
  readonly payload: string;
  readonly receivedAt: number;
}

export interface StoredMessage extends Incoming {
  readonly name: string | null;
}

/**
 * Group commit of device messages (context/group-commit.ts): a message's promise resolves only
 * after its transaction committed — the gateway acknowledges a QoS 1 PUBLISH on that, and never
 * before. Every message is stamped with the name bound to its (authenticated) device at receive
 * time, never with anything the payload claims.
 */
export class IngestBatcher {
  readonly #commits: GroupCommit<Incoming, StoredMessage>;

  constructor(
    private readonly store: Store,
    maxBatch: number,
    private readonly onStored: (m: StoredMessage) => void,
    lingerMs: number,
    metrics?: IngestMetrics,
  ) {
    this.#commits = new GroupCommit(async (batch) => {
      // One observation per batch (not per message): the hot path stays the same.
      const started = metrics === undefined ? 0 : performance.now();
      const stored = await this.#write(batch);
      metrics?.batch(stored.length, (performance.now() - started) / 1000);
      for (const s of stored) this.onStored(s);
      return stored;
    }, { maxBatch, lingerMs });
  }

  submit(msg: Incoming): Promise<StoredMessage> {
    return this.#commits.submit(msg);
  }

  /** Writes what is queued; the server awaits it before closing the store. */
  drain(): Promise<void> {
    return this.#commits.drain();
  }

  async #write(msgs: Incoming[]): Promise<StoredMessage[]> {
    return this.store.transaction(async (tx) => {
      const devices = [...new Set(msgs.map((m) => m.deviceId))];
      const bound = await tx
        .selectFrom('bindings')
        .innerJoin('names', 'names.id', 'bindings.name_id')
        .select(['bindings.device_id', 'names.id as name_id', 'names.name'])
        .where('bindings.device_id', 'in', devices)
        .where('bindings.valid_to', 'is', null)
        .execute();
      const nameOf = new Map(bound.map((b) => [b.device_id, { id: b.name_id, name: b.name }]));
      const diagnostics: unknown[][] = [];
      const telemetry: unknown[][] = [];
      const out: StoredMessage[] = [];
      for (const m of msgs) {
        const n = nameOf.get(m.deviceId);
        out.push({ ...m, name: n?.name ?? null });
        if (m.kind === 'diagnostics') {
          diagnostics.push([n?.id ?? null, n?.name ?? null, m.deviceId, m.receivedAt, m.payload]);
        } else if (m.kind === 'telemetry') {
          telemetry.push([m.deviceId, n?.id ?? null, m.receivedAt, m.payload]);
        } else if (m.kind === 'state') {
          const updated = await tx.updateTable('device_state').set({ payload: m.payload, updated_at: m.receivedAt }).where('device_id', '=', m.deviceId).executeTakeFirst();
          if (updated.numUpdatedRows === 0n) await tx.insertInto('device_state').values({ device_id: m.deviceId, payload: m.payload, updated_at: m.receivedAt }).execute();
        } else if (m.commandId !== undefined) {
          // A result only completes a command that was delivered to this very device.
          await tx
            .updateTable('commands')
            .set({ status: 'completed', result: m.payload, completed_at: m.receivedAt })
            .where('id', '=', m.commandId)
            .where('delivered_to', '=', m.deviceId)
            .where('status', 'in', ['pending', 'delivered'])
            .execute();
        }
      }
      await insertRows(tx, this.store.dialect, 'diagnostics', ['name_id', 'name', 'device_id', 'received_at', 'payload'], diagnostics);
      await insertRows(tx, this.store.dialect, 'telemetry', ['device_id', 'name_id', 'received_at', 'payload'], telemetry);
      return out;
    });
  }
}
