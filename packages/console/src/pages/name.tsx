import type { Name, NameHistory, ReplaceResult, Role } from '@fleetkey/protocol';
import { useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { ErrorNote, Section, useLoad } from '../components/bits.js';
import { Chart } from '../components/chart.js';
import { Confirm } from '../components/confirm.js';
import { bySeriesOfDevice, type Point } from '../components/series.js';
import { shortId, when } from '../format.js';
import { useEventStream } from '../live.js';
import { href } from '../router.js';

type Action = { kind: 'replace'; deviceId: string; revokeOld: boolean } | { kind: 'bind'; deviceId: string } | { kind: 'rename'; newName: string };

export function NamePage(props: { name: string; role: Role }) {
  const name = props.name;
  const current = useLoad(() => api<Name>('GET', `/names/${encodeURIComponent(name)}`), [name]);
  const history = useLoad(() => api<NameHistory>('GET', `/names/${encodeURIComponent(name)}/history`), [name]);
  const diagnostics = useLoad(() => api<{ points: Point[] }>('GET', `/data/diagnostics?name=${encodeURIComponent(name)}&limit=1000`), [name]);
  const [live, setLive] = useState<Point[]>([]);
  useEventStream(`/stream?name=${encodeURIComponent(name)}&kinds=diagnostics`, ['diagnostics'], (_e, d) => setLive((l) => [...l, d as Point].slice(-1000)));
  const [newDevice, setNewDevice] = useState('');
  const [revokeOld, setRevokeOld] = useState(true);
  const [newName, setNewName] = useState('');
  const [pending, setPending] = useState<Action | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);

  const n = current.data;
  const writer = can(props.role, 'name:write');
  const run = async () => {
    const a = pending;
    setPending(null);
    if (a === null || n === null) return;
    try {
      if (a.kind === 'replace') {
        const r = await api<ReplaceResult>('POST', `/names/${encodeURIComponent(name)}/replace`, { deviceId: a.deviceId, expectedDeviceId: n.deviceId, revokeOld: a.revokeOld, reason: 'replaced from the console' });
        setDone(`Replaced device ${shortId(r.previousDeviceId)} by ${shortId(a.deviceId)}${r.oldDeviceRevoked ? '; the old device is revoked' : ''}.`);
      } else if (a.kind === 'bind') {
        await api('POST', `/names/${encodeURIComponent(name)}/bind`, { deviceId: a.deviceId, reason: 'bound from the console' });
        setDone(`Bound to ${shortId(a.deviceId)}.`);
      } else {
        await api('POST', `/names/${encodeURIComponent(name)}/rename`, { newName: a.newName });
        window.location.hash = href('names', a.newName);
        return;
      }
      setError(null);
      setNewDevice('');
      current.reload();
      history.reload();
      diagnostics.reload();
    } catch (e) {
      setError(e);
    }
  };

  const plot = bySeriesOfDevice([...(diagnostics.data?.points ?? []), ...live]);
  return (
    <>
      <h1>Name {name}</h1>
      <ErrorNote error={current.error ?? error} />
      {done !== null && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
      {n !== null && (
        <Section title="Current binding">
          <dl class="facts">
            <dt>Held by</dt>
            <dd class="mono" data-testid="holder">
              {n.deviceId === null ? 'unbound' : <a href={href('devices', n.deviceId)}>{n.deviceId}</a>}
            </dd>
            <dt>Since</dt>
            <dd>{when(n.boundSince)}</dd>
            <dt>Tags</dt>
            <dd>{Object.entries(n.tags).map(([k, v]) => `${k}=${v}`).join(', ') || '—'}</dd>
            <dt>Former names</dt>
            <dd>{n.aliases.join(', ') || '—'}</dd>
          </dl>
        </Section>
      )}
      {n !== null && writer && (
        <Section title="Actions">
          <form
            class="inline"
            onSubmit={(e) => {
              e.preventDefault();
              const deviceId = newDevice.trim().toLowerCase();
              setPending(n.deviceId === null ? { kind: 'bind', deviceId } : { kind: 'replace', deviceId, revokeOld });
            }}
          >
            <label>
              {n.deviceId === null ? 'Device to bind' : 'Replacement device id'}
              <input value={newDevice} required pattern="[0-9a-fA-F\-]{36}" onInput={(e) => setNewDevice(e.currentTarget.value)} />
            </label>
            {n.deviceId !== null && (
              <label class="check">
                <input type="checkbox" checked={revokeOld} onChange={(e) => setRevokeOld(e.currentTarget.checked)} />
                Revoke the old device
              </label>
            )}
            <button type="submit">{n.deviceId === null ? 'Bind…' : 'Replace device…'}</button>
          </form>
          <form
            class="inline"
            onSubmit={(e) => {
              e.preventDefault();
              setPending({ kind: 'rename', newName: newName.trim() });
            }}
          >
            <label>
              New name
              <input value={newName} required onInput={(e) => setNewName(e.currentTarget.value)} />
            </label>
            <button type="submit" class="secondary">
              Rename…
            </button>
          </form>
        </Section>
      )}
      <Section title="Binding timeline">
        <ErrorNote error={history.error} />
        <ol class="timeline" data-testid="timeline">
          {(history.data?.bindings ?? []).map((b) => (
            <li key={b.id}>
              <a class="mono" href={href('devices', b.deviceId)}>
                {shortId(b.deviceId)}
              </a>{' '}
              held it from {when(b.from)} to {b.to === null ? <strong>now</strong> : when(b.to)}
              {b.unbindReason !== null ? ` (${b.unbindReason})` : ''}
            </li>
          ))}
        </ol>
      </Section>
      <Section title="Diagnostics across replacements">
        <ErrorNote error={diagnostics.error} />
        <Chart
          title={`Diagnostics of ${name}${plot.field === null ? '' : ` (${plot.field})`}`}
          series={plot.series}
          data={plot.data}
          summary={plot.series.map((s, i) => `${s.label}: ${plot.data[i + 1]?.filter((v) => v !== null).length ?? 0} points`).join('; ') || 'no data yet'}
          testId="name-chart"
        />
      </Section>
      <Confirm
        open={pending !== null}
        title={pending?.kind === 'replace' ? 'Replace the device holding this name?' : pending?.kind === 'bind' ? 'Bind this name?' : 'Rename?'}
        confirmLabel={pending?.kind === 'replace' ? 'Replace' : pending?.kind === 'bind' ? 'Bind' : 'Rename'}
        danger={pending?.kind === 'replace' && pending.revokeOld}
        onConfirm={() => void run()}
        onCancel={() => setPending(null)}
      >
        {pending?.kind === 'replace' && (
          <p>
            {name} moves from device <span class="mono">{n?.deviceId === null || n === null ? '' : shortId(n.deviceId)}</span> to <span class="mono">{shortId(pending.deviceId)}</span>. Its commands and
            data go to the new device from now on.{pending.revokeOld ? ' The old device is revoked: its certificates stop working at once.' : ''}
          </p>
        )}
        {pending?.kind === 'bind' && <p>{name} will be bound to device {shortId(pending.deviceId)}.</p>}
        {pending?.kind === 'rename' && (
          <p>
            {name} becomes {pending.newName}; the old name stays as an alias.
          </p>
        )}
      </Confirm>
    </>
  );
}
