import type { BindingList, Certificate, Device, DeviceEvidence, Role } from '@fleetkey/protocol';
import { useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { ErrorNote, Section, StatusBadge, useLoad } from '../components/bits.js';
import { Chart } from '../components/chart.js';
import { Confirm } from '../components/confirm.js';
import { bySeriesOfDevice, type Point } from '../components/series.js';
import { when } from '../format.js';
import { useEventStream } from '../live.js';
import { href } from '../router.js';

interface CommandView {
  readonly id: string;
  readonly type: string;
  readonly status: string;
  readonly result: unknown;
}

export function DevicePage(props: { id: string; role: Role }) {
  const id = props.id;
  const device = useLoad(() => api<Device>('GET', `/devices/${id}`), [id]);
  const evidence = useLoad(() => api<DeviceEvidence>('GET', `/devices/${id}/evidence`), [id]);
  const certs = useLoad(() => api<{ certificates: Certificate[] }>('GET', `/certificates?deviceId=${id}`), [id]);
  const names = useLoad(() => api<BindingList>('GET', `/devices/${id}/bindings`), [id]);
  const telemetry = useLoad(() => api<{ points: Point[] }>('GET', `/data/telemetry?deviceId=${id}&limit=500`), [id]);
  const diagnostics = useLoad(() => api<{ points: Point[] }>('GET', `/data/diagnostics?deviceId=${id}&limit=100`), [id]);
  const [live, setLive] = useState<Point[]>([]);
  const [results, setResults] = useState<{ commandId: string; payload: unknown }[]>([]);
  const [sent, setSent] = useState<CommandView[]>([]);
  useEventStream(`/stream?deviceId=${id}&kinds=telemetry,command_result`, ['telemetry', 'command_result'], (event, d) => {
    const m = d as Point & { commandId?: string };
    if (event === 'telemetry') setLive((l) => [...l, m].slice(-500));
    else if (m.commandId !== undefined) setResults((r) => [{ commandId: m.commandId!, payload: m.payload }, ...r].slice(0, 20));
  });
  const [revoking, setRevoking] = useState<Certificate | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [cmdType, setCmdType] = useState('');

  const revoke = async () => {
    const c = revoking;
    setRevoking(null);
    if (c === null) return;
    try {
      await api('POST', `/certificates/${c.serial}/revoke`, { reason: 'keyCompromise' });
      certs.reload();
    } catch (e) {
      setError(e);
    }
  };
  const send = async (e: Event) => {
    e.preventDefault();
    const name = device.data?.name;
    if (name === null || name === undefined) return;
    try {
      const c = await api<CommandView>('POST', '/commands', { name, type: cmdType.trim() });
      setSent((s) => [c, ...s].slice(0, 20));
      setCmdType('');
    } catch (err) {
      setError(err);
    }
  };

  const plot = bySeriesOfDevice([...(telemetry.data?.points ?? []), ...live]);
  const d = device.data;
  return (
    <>
      <h1>Device {id}</h1>
      <ErrorNote error={device.error ?? error} />
      {d !== null && (
        <Section title="Physical identity">
          <dl class="facts">
            <dt>Id</dt>
            <dd class="mono">{d.id}</dd>
            <dt>Status</dt>
            <dd>
              <StatusBadge status={d.status} /> {d.statusReason ?? ''}
            </dd>
            <dt>Model</dt>
            <dd>{d.model ?? '—'}</dd>
            <dt>Serials</dt>
            <dd>{Object.entries(d.serials).map(([k, v]) => `${k}: ${v}`).join(', ') || '—'}</dd>
            <dt>Bound name</dt>
            <dd>{d.name === null ? '—' : <a href={href('names', d.name)}>{d.name}</a>}</dd>
            <dt>Registered</dt>
            <dd>{when(d.createdAt)}</dd>
          </dl>
        </Section>
      )}
      <Section title="Evidence">
        <ErrorNote error={evidence.error} />
        {evidence.data !== null &&
          (evidence.data.current === null ? (
            <p>No evidence recorded yet (the device has not been admitted).</p>
          ) : (
            <pre class="json" tabIndex={0} aria-label="Recorded evidence">{JSON.stringify(evidence.data.current, null, 2)}</pre>
          ))}
      </Section>
      <Section title="Certificates">
        <ErrorNote error={certs.error} />
        <table data-testid="certificates">
          <thead>
            <tr>
              <th scope="col">Serial</th>
              <th scope="col">Kind</th>
              <th scope="col">Status</th>
              <th scope="col">Not after</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>
            {(certs.data?.certificates ?? []).map((c) => (
              <tr key={c.serial}>
                <td class="mono">{c.serial.slice(0, 16)}</td>
                <td>{c.kind}</td>
                <td>
                  <StatusBadge status={c.status} />
                </td>
                <td>{when(c.notAfter)}</td>
                <td>
                  {c.status === 'valid' && can(props.role, 'cert:revoke') ? (
                    <button type="button" class="danger" onClick={() => setRevoking(c)}>
                      Revoke
                    </button>
                  ) : (
                    '—'
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Names held over time">
        <ErrorNote error={names.error} />
        <ol class="timeline">
          {(names.data?.bindings ?? []).map((b) => (
            <li key={b.id}>
              <a href={href('names', b.name)}>{b.name}</a> from {when(b.from)} to {b.to === null ? 'now' : when(b.to)}
            </li>
          ))}
        </ol>
      </Section>
      <Section title="Live telemetry">
        <Chart title={`Telemetry${plot.field === null ? '' : ` (${plot.field})`}`} series={plot.series} data={plot.data} summary={`${plot.data[0]?.length ?? 0} points`} testId="telemetry-chart" />
      </Section>
      <Section title="Diagnostics">
        <ErrorNote error={diagnostics.error} />
        <ul class="log">
          {(diagnostics.data?.points ?? []).slice(-20).map((p) => (
            <li key={p.receivedAt}>
              <time>{when(p.receivedAt)}</time> <code>{JSON.stringify(p.payload)}</code>
            </li>
          ))}
        </ul>
      </Section>
      <Section title="Commands">
        {can(props.role, 'command:send') && d?.name !== null && d?.name !== undefined && (
          <form class="inline" onSubmit={(e) => void send(e)}>
            <label>
              Command type for {d.name}
              <input value={cmdType} required pattern="[a-z][a-z0-9._\-]{0,63}" onInput={(e) => setCmdType(e.currentTarget.value)} />
            </label>
            <button type="submit">Send</button>
          </form>
        )}
        <ul class="log">
          {sent.map((c) => (
            <li key={c.id}>
              sent <code>{c.type}</code> ({c.status}) <span class="mono">{c.id.slice(0, 8)}</span>
            </li>
          ))}
          {results.map((r) => (
            <li key={r.commandId}>
              result of <span class="mono">{r.commandId.slice(0, 8)}</span>: <code>{JSON.stringify(r.payload)}</code>
            </li>
          ))}
        </ul>
      </Section>
      <Confirm open={revoking !== null} title="Revoke this certificate?" confirmLabel="Revoke certificate" danger onConfirm={() => void revoke()} onCancel={() => setRevoking(null)}>
        <p>
          Certificate <span class="mono">{revoking?.serial.slice(0, 16)}</span> will be revoked (reason keyCompromise). The device is cut at the gateway and cannot use it again.
        </p>
      </Confirm>
    </>
  );
}
