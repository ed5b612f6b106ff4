import { randomUUID } from 'node:crypto';
import type { DeviceMessageKind } from '@fleetkey/protocol';
import type { Store } from '../../store/open-store.js';

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

interface Waiter {
  readonly msg: Incoming;
  resolve(stored: StoredMessage): void;
  reject(e: unknown): void;
}

/**
 * Group commit: messages arriving while a transaction is in flight are written together by the
 * next one, so the cost of a durable commit is shared by everything that arrived meanwhile. A
 * message's promise resolves only after its transaction committed — the gateway acknowledges a
 * QoS 1 PUBLISH on that, and never before. Every message is stamped with the name bound to its
 * (authenticated) device at receive time, never with anything the payload claims.
 */
export class IngestBatcher {
  #queue: Waiter[] = [];
  #flushing = false;

  constructor(
    private readonly store: Store,
    private readonly maxBatch: number,
    private readonly onStored: (m: StoredMessage) => void,
  ) {}

  submit(msg: Incoming): Promise<StoredMessage> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ msg, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.maxBatch);
        try {
          const stored = await this.#write(batch.map((w) => w.msg));
          batch.forEach((w, i) => w.resolve(stored[i]!));
          for (const s of stored) this.onStored(s);
        } catch (e) {
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      this.#flushing = false;
    }
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
      const diagnostics = [];
      const telemetry = [];
      const out: StoredMessage[] = [];
      for (const m of msgs) {
        const n = nameOf.get(m.deviceId);
        out.push({ ...m, name: n?.name ?? null });
        if (m.kind === 'diagnostics') {
          diagnostics.push({ id: randomUUID(), name_id: n?.id ?? null, name: n?.name ?? null, device_id: m.deviceId, received_at: m.receivedAt, payload: m.payload });
        } else if (m.kind === 'telemetry') {
          telemetry.push({ id: randomUUID(), device_id: m.deviceId, name_id: n?.id ?? null, received_at: m.receivedAt, payload: m.payload });
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
      if (diagnostics.length > 0) await tx.insertInto('diagnostics').values(diagnostics).execute();
      if (telemetry.length > 0) await tx.insertInto('telemetry').values(telemetry).execute();
      return out;
    });
  }
}
