import type { AuditEntry, AuditVerifyResult, Role } from '@fleetkey/protocol';
import { useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { ErrorNote, useLoad } from '../components/bits.js';
import { when } from '../format.js';

export function AuditPage(props: { role: Role }) {
  if (!can(props.role, 'audit:read')) {
    return (
      <>
        <h1>Audit log</h1>
        <p>Your role ({props.role}) cannot read the audit log.</p>
      </>
    );
  }
  return <AuditLog role={props.role} />;
}

function AuditLog(props: { role: Role }) {
  const [action, setAction] = useState('');
  const [subject, setSubject] = useState('');
  const [applied, setApplied] = useState({ action: '', subject: '' });
  const [verify, setVerify] = useState<AuditVerifyResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const entries = useLoad(() => {
    const p = new URLSearchParams({ limit: '200' });
    if (applied.action !== '') p.set('action', applied.action);
    if (applied.subject !== '') p.set('subject', applied.subject);
    return api<{ entries: AuditEntry[] }>('GET', `/audit?${p}`);
  }, [applied.action, applied.subject]);
  const runVerify = async () => {
    try {
      setVerify(await api<AuditVerifyResult>('POST', '/audit/verify'));
    } catch (e) {
      setError(e);
    }
  };
  // Newest first: the API pages forward from a sequence number.
  const rows = [...(entries.data?.entries ?? [])].reverse();
  return (
    <>
      <h1>Audit log</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ action: action.trim(), subject: subject.trim() });
        }}
      >
        <label>
          Action
          <input value={action} placeholder="name.replace" onInput={(e) => setAction(e.currentTarget.value)} />
        </label>
        <label>
          Subject
          <input value={subject} placeholder="name:line-03-left-welding-12" onInput={(e) => setSubject(e.currentTarget.value)} />
        </label>
        <button type="submit">Filter</button>
        {can(props.role, 'audit:verify') && (
          <button type="button" class="secondary" onClick={() => void runVerify()}>
            Verify chain
          </button>
        )}
      </form>
      {verify !== null && (
        <p class={verify.ok ? 'ok' : 'error'} role="status" data-testid="verify-result">
          {verify.ok ? `Chain verified: ${verify.entries} entries.` : `Chain broken at entry ${verify.firstBrokenSeq}: ${verify.reason}`}
        </p>
      )}
      <ErrorNote error={entries.error ?? error} />
      <table>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Subject</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr key={e.seq}>
              <td>{e.seq}</td>
              <td>{when(e.at)}</td>
              <td class="mono">{e.actor}</td>
              <td>{e.action}</td>
              <td class="mono">{e.subject ?? '—'}</td>
              <td>
                {e.outcome}
                {e.code === null ? '' : ` (${e.code})`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
