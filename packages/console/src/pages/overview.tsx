import type { Certificate, DeviceSummary, PostureReport } from '@fleetkey/protocol';
import { useState } from 'preact/hooks';
import { api, optional } from '../api.js';
import { ErrorNote, Section, StatusBadge, useLoad } from '../components/bits.js';
import { Chart } from '../components/chart.js';
import { shortId, when } from '../format.js';
import { useEventStream } from '../live.js';
import { href } from '../router.js';

const SOON_MS = 30 * 86_400_000;
const WINDOW = 120;

export function Overview() {
  const summary = useLoad(() => api<DeviceSummary>('GET', '/devices/summary'), []);
  const certs = useLoad(() => api<{ certificates: Certificate[] }>('GET', '/certificates?limit=1000'), []);
  // The posture audit (GET /v1/posture); a server without it (404) is said to have none.
  const posture = useLoad(() => optional<PostureReport>('/posture?expiringDays=30&idLimit=0'), []);
  const [rate, setRate] = useState<[number[], number[]]>([[], []]);
  useEventStream('/stream/rate', ['rate'], (_e, d) => {
    const { at, messages } = d as { at: string; messages: number };
    setRate(([xs, ys]) => [[...xs, Date.parse(at) / 1000].slice(-WINDOW), [...ys, messages].slice(-WINDOW)]);
  });
  const soon = (certs.data?.certificates ?? []).filter((c) => c.status === 'valid' && Date.parse(c.notAfter) - Date.now() < SOON_MS);
  return (
    <>
      <h1>Fleet overview</h1>
      <Section title="Devices by status">
        <ErrorNote error={summary.error} />
        {summary.data !== null && (
          <ul class="cards" data-testid="status-counts">
            <li class="card">
              <span class="big">{summary.data.total}</span> devices
            </li>
            <li class="card" data-testid="online">
              <span class="big">{summary.data.online ?? '—'}</span> online now
            </li>
            {Object.entries(summary.data.byStatus).map(([s, n]) => (
              <li class="card" key={s}>
                <span class="big">{n}</span> <StatusBadge status={s} />
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title="Live message rate">
        <Chart title="Messages stored per second, fleet-wide" series={[{ label: 'messages/s', color: '#1f5fbf' }]} data={rate} summary={`${rate[1].at(-1) ?? 0} messages in the last second`} testId="rate-chart" />
      </Section>
      <Section title="Posture findings">
        <ErrorNote error={posture.error} />
        {posture.data === null ? (
          <p>Posture findings are not available on this server.</p>
        ) : (
          <>
            <ul class="log" data-testid="posture">
              {posture.data.findings
                .filter((f) => f.count > 0)
                .map((f) => (
                  <li key={f.id}>
                    <StatusBadge status={f.severity} /> {f.title}: <strong>{f.count}</strong>
                  </li>
                ))}
            </ul>
            {posture.data.findings.every((f) => f.count === 0) && <p>No open findings.</p>}
            {posture.data.notChecked.length > 0 && <p class="hint">Not checked: {posture.data.notChecked.map((g) => `${g.provider} (${g.reason})`).join('; ')}</p>}
          </>
        )}
      </Section>
      <Section title="Certificates expiring within 30 days">
        <ErrorNote error={certs.error} />
        {soon.length === 0 ? (
          <p>None.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Serial</th>
                <th scope="col">Device</th>
                <th scope="col">Kind</th>
                <th scope="col">Expires</th>
              </tr>
            </thead>
            <tbody>
              {soon.map((c) => (
                <tr key={c.serial}>
                  <td class="mono">{c.serial.slice(0, 16)}</td>
                  <td>
                    <a href={href('devices', c.deviceId)}>{shortId(c.deviceId)}</a>
                  </td>
                  <td>{c.kind}</td>
                  <td>{when(c.notAfter)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}
