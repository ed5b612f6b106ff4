import type { ConsoleSession } from '@fleetkey/protocol';
import type { ComponentChildren } from 'preact';
import { signOut } from '../api.js';
import { useRoute } from '../router.js';

const NAV: readonly [string, string][] = [
  ['', 'Overview'],
  ['devices', 'Devices'],
  ['names', 'Names'],
  ['enrollments', 'Enrollments'],
  ['ca', 'CA & certificates'],
  ['webhooks', 'Webhooks'],
  ['audit', 'Audit log'],
  ['rollouts', 'Rollouts'],
];

export function Layout(props: { session: ConsoleSession; onSignedOut: () => void; children: ComponentChildren }) {
  const [section = ''] = useRoute();
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Fleetkey</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([path, label]) => (
              <li key={path}>
                <a href={`#/${path}`} aria-current={section === path ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          <span class="role" data-testid="role">
            {props.session.role}
          </span>
          <button type="button" class="secondary" onClick={() => void signOut().finally(props.onSignedOut)}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </>
  );
}
