import { useEffect } from 'preact/hooks';

/**
 * Subscribes to one of the operator API's server-sent event streams while the component is
 * mounted (EventSource sends the session cookie: same origin). Reconnects are EventSource's own.
 */
export function useEventStream(path: string | null, events: readonly string[], onMessage: (event: string, data: unknown) => void): void {
  useEffect(() => {
    if (path === null) return undefined;
    const source = new EventSource(`/v1${path}`, { withCredentials: true });
    const handlers = events.map((name) => {
      const h = (e: MessageEvent<string>) => {
        try {
          onMessage(name, JSON.parse(e.data));
        } catch {
          // A malformed event is dropped; the stream goes on.
        }
      };
      source.addEventListener(name, h as EventListener);
      return [name, h] as const;
    });
    return () => {
      for (const [name, h] of handlers) source.removeEventListener(name, h as EventListener);
      source.close();
    };
  }, [path]);
}
