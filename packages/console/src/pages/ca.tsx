import type { CaList, Certificate, Role } from '@fleetkey/protocol';
import { useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { ErrorNote, Section, StatusBadge, useLoad } from '../components/bits.js';
import { Confirm } from '../components/confirm.js';
import { shortId, when } from '../format.js';
import { href } from '../router.js';

export function CaPage(props: { role: Role }) {
  const ca = useLoad(() => api<CaList>('GET', '/ca'), []);
  const certs = useLoad(() => api<{ certificates: Certificate[] }>('GET', '/certificates?limit=200'), []);
  const [revoking, setRevoking] = useState<Certificate | null>(null);
  const [error, setError] = useState<unknown>(null);
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
  return (
    <>
      <h1>CA and certificates</h1>
      <ErrorNote error={ca.error ?? error} />
      <Section title="Authorities">
        <table>
          <thead>
            <tr>
              <th scope="col">Role</th>
              <th scope="col">Subject</th>
              <th scope="col">Status</th>
              <th scope="col">Keystore</th>
              <th scope="col">Not after</th>
            </tr>
          </thead>
          <tbody>
            {(ca.data?.authorities ?? []).map((a) => (
              <tr key={a.id}>
                <td>{a.role}</td>
                <td>{a.subject}</td>
                <td>{a.status}</td>
                <td>{a.keystore}</td>
                <td>{when(a.notAfter)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {ca.data !== null && <p>OCSP responder: <code>{ca.data.ocspUrl}</code></p>}
      </Section>
      <Section title="Recent certificates">
        <ErrorNote error={certs.error} />
        <table>
          <thead>
            <tr>
              <th scope="col">Serial</th>
              <th scope="col">Device</th>
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
                <td class="mono">
                  <a href={href('devices', c.deviceId)}>{shortId(c.deviceId)}</a>
                </td>
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
      <Confirm open={revoking !== null} title="Revoke this certificate?" confirmLabel="Revoke certificate" danger onConfirm={() => void revoke()} onCancel={() => setRevoking(null)}>
        <p>
          Certificate <span class="mono">{revoking?.serial.slice(0, 16)}</span> will be revoked (reason keyCompromise).
        </p>
      </Confirm>
    </>
  );
}
