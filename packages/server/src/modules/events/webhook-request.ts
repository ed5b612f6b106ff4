import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Destination } from './webhook-destinations.js';

export interface WebhookResponse {
  readonly status: number;
  /** The start of the body, at most `maxResponseBytes`. */
  readonly text: string;
}

export interface OutboundResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface OutboundLimits {
  /** For the whole exchange: connect, headers and body. */
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  /** What a longer body does: cut at the limit (a webhook answer is only logged) or fail the request. */
  readonly overflow: 'truncate' | 'fail';
}

/**
 * One request to a checked destination (OutboundDestinations.check). The socket's `lookup`
 * answers with the address that was checked and nothing else, so the connection goes exactly
 * there (no second resolution for DNS rebinding to exploit), while Host and TLS SNI keep the
 * URL's hostname and the certificate is verified against it. Redirects are not followed
 * (node:http never follows them): a 3xx is just a status. One fresh connection per call (agent:
 * false), so no pooled socket opened for another answer is reused. The time budget covers the
 * body too, so a peer trickling bytes costs at most `timeoutMs`.
 */
export function requestDestination(
  dest: Destination,
  req: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
  limits: OutboundLimits,
): Promise<OutboundResponse> {
  const { url, address } = dest;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const lookup: LookupFunction = (_name, opts, callback) => {
    if (opts.all === true) (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [address]);
    else callback(null, address.address, address.family);
  };
  const secure = url.protocol === 'https:';
  const headers = req.body === undefined ? req.headers : { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) };
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).subarray(0, limits.maxResponseBytes) });
      };
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        reject(e);
      };
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size > limits.maxResponseBytes || (limits.overflow === 'truncate' && size === limits.maxResponseBytes)) {
          res.destroy();
          if (limits.overflow === 'truncate') done();
          else fail(new Error(`response from ${url.host} is more than ${limits.maxResponseBytes} bytes`));
        }
      });
      res.on('end', done);
      res.on('error', fail);
      // An abort (timeout) mid-body: 'close' without 'end'.
      res.on('close', () => fail(new Error(`response from ${url.host} ended early`)));
    };
    const r = (secure ? httpsRequest : httpRequest)(
      {
        protocol: url.protocol,
        host,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
        lookup,
        agent: false,
        signal: AbortSignal.timeout(limits.timeoutMs),
        ...(secure && isIP(host) === 0 ? { servername: host } : {}),
      },
      onResponse,
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

/** POSTs `body` to a checked destination: a webhook delivery or a decision-webhook call. */
export async function postToDestination(
  dest: Destination,
  headers: Record<string, string>,
  body: string,
  options: { timeoutMs: number; maxResponseBytes: number },
): Promise<WebhookResponse> {
  const res = await requestDestination(dest, { method: 'POST', headers, body }, { ...options, overflow: 'truncate' });
  return { status: res.status, text: res.body.toString('utf8').slice(0, options.maxResponseBytes) };
}
