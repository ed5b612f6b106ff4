import { FleetkeyError } from '@fleetkey/protocol';
import { isIP } from 'node:net';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/**
 * Webhook targets are operator-supplied URLs the server will call: https only, except plain
 * http to loopback (a local relay) or when the operator opts in. No credentials in the URL
 * (they would sit in the database and the audit log in clear).
 */
export function checkWebhookUrl(raw: string, allowInsecureHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: 'not a URL' });
  }
  if (url.username !== '' || url.password !== '') throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: 'credentials in URL' });
  if (url.hash !== '') throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: 'fragment in URL' });
  if (url.protocol === 'https:') return url;
  const host = url.hostname;
  const loopback = LOOPBACK.has(host) || (isIP(host) === 4 && host.startsWith('127.'));
  if (url.protocol === 'http:' && (loopback || allowInsecureHttp)) return url;
  throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: `scheme ${url.protocol} not allowed for ${host}` });
}
