import { optional } from '../api.js';
import { ErrorNote, useLoad } from '../components/bits.js';

interface Rollout {
  readonly id: string;
  readonly status?: string;
}

/** Rollouts are another branch's API: until it exists (404) the page says there are none. */
export function RolloutsPage() {
  const list = useLoad(() => optional<{ rollouts: Rollout[] }>('/rollouts'), []);
  return (
    <>
      <h1>Rollouts</h1>
      <ErrorNote error={list.error} />
      {list.data === null || list.data.rollouts.length === 0 ? (
        <p>No rollouts{list.data === null ? ': this server has no rollout API yet' : ''}.</p>
      ) : (
        <ul>
          {list.data.rollouts.map((r) => (
            <li key={r.id}>
              <span class="mono">{r.id}</span> {r.status ?? ''}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
