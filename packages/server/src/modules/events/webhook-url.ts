import { isIP } from 'node:net';
import { FleetkeyError } from '@fleetkey/protocol';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** The host exactly as the operator wrote it, before the URL parser normalised it. */
function writtenHost(raw: string): string | null {
  const m = /^\s*[a-zA-Z][a-zA-Z0-9+.-]*:[/\\]{2}(?:[^@/?#\\]*@)?(\[[^\]]*\]|[^:/?#\\]*)/.exec(raw);
  return m === null ? null : m[1]!.toLowerCase();
}

/**
 * Static checks of an operator-supplied URL the server will call (webhook-destinations.ts then
 * checks where it leads): https only, except plain http to loopback (a local relay) or when the
 * operator opts in. No credentials in the URL (they would sit in the database and the audit log
 * in clear). An IPv4 address only in dotted-decimal: the WHATWG URL parser reads
 * `http://2130706433/`, `0x7f.1`, `127.1` and `%31%32%37.0.0.1` as 127.0.0.1, and such a spelling
 * exists only to slip past a filter.
 * @throws FleetkeyError WEBHOOK_URL_REFUSED
 */
export function parseWebhookUrl(raw: string, allowInsecureHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: 'not a URL' });
  }
  if (url.username !== '' || url.password !== '') throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: 'credentials in URL' });
  if (url.hash !== '') throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: 'fragment in URL' });
  const host = url.hostname;
  if (isIP(host) === 4 && writtenHost(raw) !== host) {
    throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: `${writtenHost(raw) ?? '?'} is an IPv4 address in another notation than dotted decimal (${host})` });
  }
  if (url.protocol === 'https:') return url;
  const loopback = LOOPBACK.has(host) || (isIP(host) === 4 && host.startsWith('127.'));
  if (url.protocol === 'http:' && (loopback || allowInsecureHttp)) return url;
  throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: `scheme ${url.protocol} not allowed for ${host}` });
}
