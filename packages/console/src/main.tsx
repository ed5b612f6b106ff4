import type { ConsoleSession } from '@fleetkey/protocol';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentSession, setSignedOutHandler } from './api.js';
import { Layout } from './components/layout.js';
import { SignIn } from './pages/sign-in.js';
import { Pages } from './pages/index.js';
import './styles.css';

function App() {
  const [session, setSession] = useState<ConsoleSession | null | undefined>(undefined);
  useEffect(() => {
    setSignedOutHandler(() => setSession(null));
    void currentSession().then(setSession);
  }, []);
  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  return (
    <Layout session={session} onSignedOut={() => setSession(null)}>
      <Pages role={session.role} />
    </Layout>
  );
}

render(<App />, document.getElementById('app')!);
