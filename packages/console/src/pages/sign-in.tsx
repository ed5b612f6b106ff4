import type { ConsoleSession } from '@fleetkey/protocol';
import { useState } from 'preact/hooks';
import { signIn } from '../api.js';
import { ErrorNote } from '../components/bits.js';

export function SignIn(props: { onSignedIn: (s: ConsoleSession) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const s = await signIn(token.trim());
      setToken('');
      props.onSignedIn(s);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="sign-in">
      <h1>Fleetkey console</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <p class="hint">The token is exchanged for a session cookie and not kept by the page. The session ends when you sign out, after 8 hours, or when the token is revoked.</p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <ErrorNote error={error} />
      </form>
    </main>
  );
}
