import { randomBytes, randomUUID } from 'node:crypto';
import { FleetkeyError, type CreateWebhookBody, type CreatedWebhook, type Webhook } from '@fleetkey/protocol';
import { iso, isoOrNull } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { SecretBox } from '../../secrets/secret-box.js';
import type { Store } from '../../store/open-store.js';
import type { WebhookRow } from '../../store/schema.js';
import type { OutboundDestinations } from './webhook-destinations.js';

export const webhookSecretAad = (id: string): string => `webhook-secret:${id}`;

export class WebhookService {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly box: SecretBox,
    private readonly destinations: OutboundDestinations,
  ) {}

  async add(ctx: OpContext, body: CreateWebhookBody): Promise<CreatedWebhook> {
    const { url } = await this.destinations.check(body.url);
    return this.uow.run(ctx, { action: 'webhook.add' }, async (w) => {
      const id = randomUUID();
      const secret = `whsec_${randomBytes(32).toString('base64url')}`;
      const row: WebhookRow = {
        id,
        url: url.toString(),
        events: JSON.stringify(body.events),
        secret_sealed: this.box.seal(Buffer.from(secret, 'utf8'), webhookSecretAad(id)),
        created_at: w.now,
        created_by: ctx.actor.label,
        removed_at: null,
      };
      await w.tx.insertInto('webhooks').values(row).execute();
      w.subject(`webhook:${id}`);
      w.note({ url: row.url, events: body.events });
      return { webhook: this.toWebhook(row, { pending: 0, delivered: 0, failed: 0 }), secret };
    });
  }

  async remove(ctx: OpContext, id: string): Promise<void> {
    await this.uow.run(ctx, { action: 'webhook.remove', subject: `webhook:${id}` }, async (w) => {
      const res = await w.tx
        .updateTable('webhooks')
        .set({ removed_at: w.now })
        .where('id', '=', id)
        .where('removed_at', 'is', null)
        .executeTakeFirst();
      if (res.numUpdatedRows !== 1n) throw new FleetkeyError('WEBHOOK_NOT_FOUND', { detail: id });
      await w.tx
        .updateTable('webhook_deliveries')
        .set({ status: 'failed', last_error: 'webhook removed' })
        .where('webhook_id', '=', id)
        .where('status', '=', 'pending')
        .execute();
    });
  }

  async list(): Promise<Webhook[]> {
    const rows = await this.store.db.selectFrom('webhooks').selectAll().where('removed_at', 'is', null).orderBy('created_at').execute();
    const counts = await this.store.db
      .selectFrom('webhook_deliveries')
      .select(['webhook_id', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['webhook_id', 'status'])
      .execute();
    return rows.map((r) => {
      const c = { pending: 0, delivered: 0, failed: 0 };
      for (const x of counts) if (x.webhook_id === r.id) c[x.status] = Number(x.n);
      return this.toWebhook(r, c);
    });
  }

  async deliveries(id: string, limit: number) {
    const hook = await this.store.db.selectFrom('webhooks').select('id').where('id', '=', id).executeTakeFirst();
    if (hook === undefined) throw new FleetkeyError('WEBHOOK_NOT_FOUND', { detail: id });
    const rows = await this.store.db
      .selectFrom('webhook_deliveries')
      .innerJoin('events', 'events.id', 'webhook_deliveries.event_id')
      .selectAll('webhook_deliveries')
      .select('events.type as event_type')
      .where('webhook_id', '=', id)
      .orderBy('webhook_deliveries.created_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      eventId: r.event_id,
      eventType: r.event_type,
      status: r.status,
      attempts: r.attempts,
      nextAttemptAt: iso(r.next_attempt_at),
      lastStatus: r.last_status,
      lastError: r.last_error,
      deliveredAt: isoOrNull(r.delivered_at),
    }));
  }

  private toWebhook(r: WebhookRow, deliveries: Webhook['deliveries']): Webhook {
    return {
      id: r.id,
      url: r.url,
      events: JSON.parse(r.events) as string[],
      createdAt: iso(r.created_at),
      createdBy: r.created_by,
      deliveries,
    };
  }
}
