import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/names/line-03`): the server serves only `/` and its assets, so a deep link never
 * needs a server route and the page's path never carries an identifier to logs or referrers.
 */
export function useRoute(): string[] {
  const read = () => window.location.hash.replace(/^#\/?/, '').split('/').filter((p) => p !== '').map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const on = () => setParts(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return parts;
}

export const href = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join('/')}`;
