import type { Enrollment } from '@fleetkey/protocol';
import { api } from '../api.js';
import { ErrorNote, useLoad } from '../components/bits.js';
import { shortId, when } from '../format.js';
import { href } from '../router.js';

export function EnrollmentsPage() {
  const list = useLoad(() => api<{ enrollments: Enrollment[] }>('GET', '/enrollments'), []);
  return (
    <>
      <h1>Enrollments</h1>
      <ErrorNote error={list.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Label</th>
            <th scope="col">Kind</th>
            <th scope="col">Attestation</th>
            <th scope="col">Device</th>
            <th scope="col">Provisioned</th>
            <th scope="col">Enabled</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.enrollments ?? []).map((e) => (
            <tr key={e.id}>
              <td>{e.label}</td>
              <td>{e.kind}</td>
              <td>{e.attestation}</td>
              <td class="mono">{e.deviceId === null ? '—' : <a href={href('devices', e.deviceId)}>{shortId(e.deviceId)}</a>}</td>
              <td>
                {e.devicesProvisioned}
                {e.maxDevices === null ? '' : ` / ${e.maxDevices}`}
              </td>
              <td>{e.enabled ? 'yes' : 'no'}</td>
              <td>{when(e.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
