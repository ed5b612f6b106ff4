import type { Device, DeviceList, DeviceStatus } from '@fleetkey/protocol';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorNote, StatusBadge } from '../components/bits.js';
import { shortId, when } from '../format.js';
import { href } from '../router.js';

const PAGE = 50;
// The protocol's DEVICE_STATUSES, typed against it (a value import would bundle TypeBox).
const STATUSES: readonly ('' | DeviceStatus)[] = ['', 'manufactured', 'provisioned', 'active', 'suspended', 'revoked', 'retired'];

/** Server-side search, filters and keyset pages: the browser never holds more than one page. */
export function DevicesPage() {
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const [model, setModel] = useState('');
  const [cursor, setCursor] = useState<string[]>([]);
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (q.trim() !== '') params.set('q', q.trim());
    if (status !== '') params.set('status', status);
    if (model.trim() !== '') params.set('model', model.trim());
    const after = cursor.at(-1);
    if (after !== undefined) params.set('after', after);
    let live = true;
    // Debounced: typing a search sends one request when the operator pauses.
    const timer = setTimeout(() => {
      api<DeviceList>('GET', `/devices?${params}`).then(
        (r) => live && (setDevices(r.devices), setError(null)),
        (e: unknown) => live && setError(e),
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [q, status, model, cursor]);

  const reset = () => setCursor([]);
  return (
    <>
      <h1>Devices</h1>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search (id or name prefix)
          <input type="search" value={q} onInput={(e) => (setQ(e.currentTarget.value), reset())} />
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => (setStatus(e.currentTarget.value), reset())}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s === '' ? 'any' : s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Model
          <input value={model} onInput={(e) => (setModel(e.currentTarget.value), reset())} />
        </label>
      </form>
      <ErrorNote error={error} />
      <table data-testid="devices-table">
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Name</th>
            <th scope="col">Model</th>
            <th scope="col">Status</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {(devices ?? []).map((d) => (
            <tr key={d.id}>
              <td class="mono">
                <a href={href('devices', d.id)}>{shortId(d.id)}</a>
              </td>
              <td>{d.name === null ? '—' : <a href={href('names', d.name)}>{d.name}</a>}</td>
              <td>{d.model ?? '—'}</td>
              <td>
                <StatusBadge status={d.status} />
              </td>
              <td>{when(d.updatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="pager">
        <button type="button" class="secondary" disabled={cursor.length === 0} onClick={() => setCursor((c) => c.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" class="secondary" disabled={(devices?.length ?? 0) < PAGE} onClick={() => setCursor((c) => [...c, devices!.at(-1)!.id])}>
          Next page
        </button>
      </div>
    </>
  );
}
