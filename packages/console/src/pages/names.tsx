import type { NameList } from '@fleetkey/protocol';
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorNote, useLoad } from '../components/bits.js';
import { shortId, when } from '../format.js';
import { href } from '../router.js';

const PAGE = 200;

export function NamesPage() {
  const [cursor, setCursor] = useState<string[]>([]);
  const after = cursor.at(-1);
  const names = useLoad(() => api<NameList>('GET', `/names?limit=${PAGE}${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`), [after]);
  const [tag, setTag] = useState('');
  const [key, value] = tag.includes('=') ? tag.split('=', 2) : [tag, undefined];
  const shown = (names.data?.names ?? []).filter((n) => key === undefined || key.trim() === '' || (value === undefined ? key in n.tags : n.tags[key] === value));
  const tagsOf = (t: Record<string, string>) => Object.entries(t).map(([k, v]) => `${k}=${v}`).join(', ');
  return (
    <>
      <h1>Names</h1>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Tag (key or key=value)
          <input value={tag} onInput={(e) => setTag(e.currentTarget.value)} />
        </label>
      </form>
      <ErrorNote error={names.error} />
      <table data-testid="names-table">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Tags</th>
            <th scope="col">Held by</th>
            <th scope="col">Since</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((n) => (
            <tr key={n.id}>
              <td>
                <a href={href('names', n.name)}>{n.name}</a>
              </td>
              <td>{tagsOf(n.tags) || '—'}</td>
              <td class="mono">{n.deviceId === null ? 'unbound' : <a href={href('devices', n.deviceId)}>{shortId(n.deviceId)}</a>}</td>
              <td>{when(n.boundSince)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="pager">
        <button type="button" class="secondary" disabled={cursor.length === 0} onClick={() => setCursor((c) => c.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" class="secondary" disabled={(names.data?.names.length ?? 0) < PAGE} onClick={() => setCursor((c) => [...c, names.data!.names.at(-1)!.name])}>
          Next page
        </button>
      </div>
    </>
  );
}
