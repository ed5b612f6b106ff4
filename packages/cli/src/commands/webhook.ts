import type { CreatedWebhook, Webhook } from '@fleetkey/protocol';
import { Command } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';

export function webhookCommand(): Command {
  const cmd = new Command('webhook').description('signed event deliveries to other systems');
  cmd
    .command('add <url>')
    .description('add a webhook (the signing secret is shown once)')
    .requiredOption('--events <list>', 'comma-separated event types, e.g. name.rebound,device.status_changed')
    .action(async (url: string, o: { events: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const events = o.events.split(',').map((e) => e.trim()).filter((e) => e !== '');
      const r = await Client.from(g).request<CreatedWebhook>('POST', '/v1/webhooks', { url, events });
      emit(g, r, () => `webhook ${r.webhook.id}\nsigning secret: ${r.secret}\n(store it now: it is not shown again)`);
    });
  cmd
    .command('list')
    .description('list webhooks with delivery counts')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ webhooks: Webhook[] }>('GET', '/v1/webhooks');
      emit(g, r, () =>
        table(
          ['ID', 'URL', 'EVENTS', 'PENDING', 'DELIVERED', 'FAILED'],
          r.webhooks.map((w) => [w.id, w.url, w.events.join(','), w.deliveries.pending, w.deliveries.delivered, w.deliveries.failed]),
        ),
      );
    });
  cmd
    .command('remove <id>')
    .description('remove a webhook (its pending deliveries are abandoned)')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      await Client.from(g).request('DELETE', `/v1/webhooks/${encodeURIComponent(id)}`);
      emit(g, { removed: id }, () => `webhook ${id} removed`);
    });
  cmd
    .command('deliveries <id>')
    .description('recent deliveries of a webhook and their status')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ deliveries: { id: string; eventType: string; status: string; attempts: number; lastStatus: number | null; lastError: string | null }[] }>(
        'GET',
        `/v1/webhooks/${encodeURIComponent(id)}/deliveries`,
      );
      emit(g, r, () => table(['DELIVERY', 'EVENT', 'STATUS', 'ATTEMPTS', 'LAST'], r.deliveries.map((d) => [d.id, d.eventType, d.status, d.attempts, d.lastError ?? d.lastStatus])));
    });
  return cmd;
}
