import type { Device, DeviceList, DeviceStatus } from '@fleetkey/protocol';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorNote, StatusBadge } from '../components/bits.js';
import { shortId, when } from '../format.js';
import { href } from '../router.js';

const PAGE = 50;
// The protocol's DEVICE_STATUSES, typed against it (a value import would bundle TypeBox).
const STATUSES: readonly ('' | DeviceStatus)[] = ['', 'manufactured', 'provisioned', 'active', 'suspended', 'revoked', 'retired'];
// The protocol's TagFilter pattern (TAG_KEY_PATTERN=TAG_VALUE_PATTERN): a half-typed tag is not sent,
// so typing `env=` one key at a time does not flash VALIDATION_FAILED.
const TAG_FILTER = /^[a-z][a-z0-9_.-]{0,63}=[A-Za-z0-9_.:/@+-]{0,128}$/;

/** Server-side search, filters and keyset pages: the browser never holds more than one page. */
export function DevicesPage() {
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const [model, setModel] = useState('');
  const [tag, setTag] = useState('');
  const [online, setOnline] = useState<'' | 'true' | 'false'>('');
  const tagReady = tag.trim() === '' || TAG_FILTER.test(tag.trim());
  const [cursor, setCursor] = useState<string[]>([]);
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (q.trim() !== '') params.set('q', q.trim());
    if (status !== '') params.set('status', status);
    if (model.trim() !== '') params.set('model', model.trim());
    if (!tagReady) return;
    if (tag.trim() !== '') params.set('tag', tag.trim());
    if (online !== '') params.set('online', online);
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
  }, [q, status, model, tag, online, cursor]);

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
        <label>
          Tag of its name (key=value)
          <input value={tag} placeholder="line=3" aria-invalid={!tagReady} onInput={(e) => (setTag(e.currentTarget.value), reset())} />
        </label>
        <label>
          Online
          <select value={online} onChange={(e) => (setOnline(e.currentTarget.value as '' | 'true' | 'false'), reset())}>
            <option value="">any</option>
            <option value="true">online</option>
            <option value="false">offline</option>
          </select>
        </label>
      </form>
      {tagReady ? null : <p class="hint" role="status">A tag filter is key=value (lower-case key).</p>}
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
