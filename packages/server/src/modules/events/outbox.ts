import { randomUUID } from 'node:crypto';
import type { EventType } from '@fleetkey/protocol';
import type { Tx } from '../../store/open-store.js';
import type { FleetEvent } from './event-bus.js';

export interface NewEvent {
  readonly type: EventType;
  readonly subject: string;
  readonly payload: Record<string, unknown>;
}

/**
 * Writes events and one pending delivery per subscribed webhook, inside the caller's
 * transaction: an event exists exactly when its change does, and a crash after commit loses
 * no delivery (the dispatcher picks pending rows up on start). One read of the webhook list.
 */
export async function writeEvents(tx: Tx, now: number, events: readonly NewEvent[]): Promise<FleetEvent[]> {
  if (events.length === 0) return [];
  const rows = events.map((e) => ({ id: randomUUID(), type: e.type, subject: e.subject, payload: JSON.stringify(e.payload), created_at: now }));
  for (let i = 0; i < rows.length; i += 500) await tx.insertInto('events').values(rows.slice(i, i + 500)).execute();
  const hooks = (await tx.selectFrom('webhooks').select(['id', 'events']).where('removed_at', 'is', null).execute()).map((h) => ({ id: h.id, events: new Set(JSON.parse(h.events) as string[]) }));
  const deliveries = [];
  const out: FleetEvent[] = [];
  for (const [k, e] of events.entries()) {
    const row = rows[k]!;
    const targets = hooks.filter((h) => h.events.has(e.type));
    for (const h of targets) {
      deliveries.push({
        id: randomUUID(),
        webhook_id: h.id,
        event_id: row.id,
        status: 'pending' as const,
        attempts: 0,
        next_attempt_at: now,
        last_status: null,
        last_error: null,
        delivered_at: null,
        created_at: now,
      });
    }
    out.push({ id: row.id, type: e.type, subject: e.subject, payload: e.payload, createdAt: now, deliveries: targets.length });
  }
  for (let i = 0; i < deliveries.length; i += 500) await tx.insertInto('webhook_deliveries').values(deliveries.slice(i, i + 500)).execute();
  return out;
}
