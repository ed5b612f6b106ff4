import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Destination } from './webhook-destinations.js';

export interface WebhookResponse {
  readonly status: number;
  /** The start of the body, at most `maxResponseBytes`. */
  readonly text: string;
}

/**
 * POSTs `body` to a checked destination. The socket's `lookup` answers with the address that
 * was checked and nothing else, so the connection goes exactly there (no second resolution for
 * DNS rebinding to exploit), while Host and TLS SNI keep the URL's hostname and the certificate
 * is verified against it. Redirects are not followed (node:http never follows them): a 3xx is
 * just a status. One fresh connection per call (agent: false), so no pooled socket opened for
 * another answer is reused.
 */
export function postToDestination(
  dest: Destination,
  headers: Record<string, string>,
  body: string,
  options: { timeoutMs: number; maxResponseBytes: number },
): Promise<WebhookResponse> {
  const { url, address } = dest;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const lookup: LookupFunction = (_name, opts, callback) => {
    if (opts.all === true) (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [address]);
    else callback(null, address.address, address.family);
  };
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').slice(0, options.maxResponseBytes) });
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= options.maxResponseBytes) {
          res.destroy();
          done();
        }
      });
      res.on('end', done);
      res.on('error', reject);
    };
    const req = (secure ? httpsRequest : httpRequest)(
      {
        protocol: url.protocol,
        host,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup,
        agent: false,
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(secure && isIP(host) === 0 ? { servername: host } : {}),
      },
      onResponse,
    );
    req.on('error', reject);
    req.end(body);
  });
}
