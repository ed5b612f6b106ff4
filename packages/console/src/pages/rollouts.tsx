import type { DesiredRelease, Release } from '@fleetkey/protocol';
import { optional } from '../api.js';
import { ErrorNote, Section, useLoad } from '../components/bits.js';
import { shortId, when } from '../format.js';
import { href } from '../router.js';

/**
 * Releases and which names are assigned one (the update repository's API, GET /v1/releases and
 * /v1/releases/desired). A server without that API (404) is said to have no rollouts.
 */
export function RolloutsPage() {
  const releases = useLoad(() => optional<{ releases: Release[] }>('/releases'), []);
  const desired = useLoad(() => optional<{ desired: DesiredRelease[] }>('/releases/desired'), []);
  const byId = new Map((releases.data?.releases ?? []).map((r) => [r.id, r]));
  if (releases.data === null && releases.error === null) {
    return (
      <>
        <h1>Rollouts</h1>
        <p>No rollouts: this server has no release API.</p>
      </>
    );
  }
  return (
    <>
      <h1>Rollouts</h1>
      <ErrorNote error={releases.error ?? desired.error} />
      <Section title="Releases">
        {(releases.data?.releases.length ?? 0) === 0 ? (
          <p>No releases yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Version</th>
                <th scope="col">Floor</th>
                <th scope="col">Target</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {releases.data!.releases.map((r) => (
                <tr key={r.id}>
                  <td>{r.model}</td>
                  <td>{r.version}</td>
                  <td>{r.minVersion ?? '—'}</td>
                  <td class="mono">{r.targetName}</td>
                  <td>{when(r.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Assigned to names">
        {(desired.data?.desired.length ?? 0) === 0 ? (
          <p>No name is assigned a release.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Release</th>
                <th scope="col">Source</th>
                <th scope="col">Since</th>
              </tr>
            </thead>
            <tbody>
              {desired.data!.desired.map((d) => {
                const r = byId.get(d.releaseId);
                return (
                  <tr key={d.nameId}>
                    <td>
                      <a href={href('names', d.name)}>{d.name}</a>
                    </td>
                    <td>{r === undefined ? shortId(d.releaseId) : `${r.model} ${r.version}`}</td>
                    <td>{d.source}</td>
                    <td>{when(d.updatedAt)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}
