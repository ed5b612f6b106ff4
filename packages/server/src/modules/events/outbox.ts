import { randomUUID } from 'node:crypto';
import type { EventType } from '@fleetkey/protocol';
import type { Tx } from '../../store/open-store.js';
import type { FleetEvent } from './event-bus.js';

/**
 * Writes an event and one pending delivery per subscribed webhook, inside the caller's
 * transaction: an event exists exactly when its change does, and a crash after commit loses
 * no delivery (the dispatcher picks pending rows up on start).
 */
export async function writeEvent(
  tx: Tx,
  now: number,
  type: EventType,
  subject: string,
  payload: Record<string, unknown>,
): Promise<FleetEvent> {
  const id = randomUUID();
  await tx
    .insertInto('events')
    .values({ id, type, subject, payload: JSON.stringify(payload), created_at: now })
    .execute();
  const hooks = await tx.selectFrom('webhooks').select(['id', 'events']).where('removed_at', 'is', null).execute();
  const targets = hooks.filter((h) => (JSON.parse(h.events) as string[]).includes(type));
  if (targets.length > 0) {
    await tx
      .insertInto('webhook_deliveries')
      .values(
        targets.map((h) => ({
          id: randomUUID(),
          webhook_id: h.id,
          event_id: id,
          status: 'pending' as const,
          attempts: 0,
          next_attempt_at: now,
          last_status: null,
          last_error: null,
          delivered_at: null,
          created_at: now,
        })),
      )
      .execute();
  }
  return { id, type, subject, payload, createdAt: now, deliveries: targets.length };
}
