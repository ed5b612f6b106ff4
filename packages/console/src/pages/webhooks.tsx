import type { Delivery, Role, Webhook } from '@fleetkey/protocol';
import { useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { ErrorNote, Section, StatusBadge, useLoad } from '../components/bits.js';
import { when } from '../format.js';

export function WebhooksPage(props: { role: Role }) {
  if (!can(props.role, 'webhook:admin')) {
    return (
      <>
        <h1>Webhooks</h1>
        <p>Webhooks are managed by admins; your role ({props.role}) cannot see them.</p>
      </>
    );
  }
  return <WebhookList />;
}

function WebhookList() {
  const hooks = useLoad(() => api<{ webhooks: Webhook[] }>('GET', '/webhooks'), []);
  const [open, setOpen] = useState<string | null>(null);
  return (
    <>
      <h1>Webhooks</h1>
      <ErrorNote error={hooks.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">Events</th>
            <th scope="col">Pending / delivered / failed</th>
            <th scope="col">Deliveries</th>
          </tr>
        </thead>
        <tbody>
          {(hooks.data?.webhooks ?? []).map((w) => (
            <tr key={w.id}>
              <td>
                <code>{w.url}</code>
              </td>
              <td>{w.events.join(', ')}</td>
              <td>
                {w.deliveries.pending} / {w.deliveries.delivered} / {w.deliveries.failed}
              </td>
              <td>
                <button type="button" class="secondary" aria-expanded={open === w.id} onClick={() => setOpen(open === w.id ? null : w.id)}>
                  {open === w.id ? 'Hide' : 'Show'} deliveries
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {open !== null && <Deliveries id={open} />}
    </>
  );
}

function Deliveries(props: { id: string }) {
  const list = useLoad(() => api<{ deliveries: Delivery[] }>('GET', `/webhooks/${props.id}/deliveries?limit=100`), [props.id]);
  return (
    <Section title="Deliveries">
      <ErrorNote error={list.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last answer</th>
            <th scope="col">Delivered</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.deliveries ?? []).map((d) => (
            <tr key={d.id}>
              <td>{d.eventType}</td>
              <td>
                <StatusBadge status={d.status} />
              </td>
              <td>{d.attempts}</td>
              <td>{d.lastStatus ?? d.lastError ?? '—'}</td>
              <td>{when(d.deliveredAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
