import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { FleetkeyError } from '@fleetkey/protocol';
import { ProvisioningRefusedError, TransientProvisioningError } from './errors.js';
import { SERVER_CERT_OUT_OF_VALIDITY, UNTRUSTED_SERVER } from '../internal/untrusted-server.js';

/** TLS material for one provisioning run. Server trust is the bundle's CA file, never the system store. */
export interface DevicePlaneTls {
  /** PEM CA certificates the device plane's server certificate must chain to. */
  ca: string;
  /** Client certificate chain (PEM) and its private key (PEM, zeroed by the caller) for mTLS. */
  cert?: string;
  key?: Buffer;
}

export interface DevicePlaneClientOptions {
  /** Per request, connect to last byte. Default 30 s. */
  timeoutMs?: number;
}

const MAX_RESPONSE_BYTES = 1 << 20;

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string' ? (e as { code: string }).code : undefined;
}

/**
 * A JSON client for the device plane (HTTPS on the device listener). It classifies every outcome
 * the way the provisioning contract does: 2xx → body; 429 and 5xx and network failures →
 * {@link TransientProvisioningError}; any other status → {@link ProvisioningRefusedError}.
 * One keep-alive connection per client, so a nonce and the request that spends it share a socket.
 */
export class DevicePlaneClient {
  readonly #base: string;
  readonly #agent: Agent;
  readonly #timeoutMs: number;

  constructor(baseUrl: string, tls: DevicePlaneTls, options: DevicePlaneClientOptions = {}) {
    const u = new URL(baseUrl);
    if (u.protocol !== 'https:') throw new FleetkeyError('CONFIG_INVALID', { detail: `provisioning URL must be https: ${u.protocol}` });
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: tls.ca,
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
      // Never rejectUnauthorized:false: the server proves itself against the bundle's CAs.
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    });
  }

  /** POSTs `body` as JSON to `path` and returns the parsed 2xx body. */
  post(path: string, body: unknown): Promise<unknown> {
    const payload = Buffer.from(JSON.stringify(body));
    const url = `${this.#base}${path}`;
    return new Promise<unknown>((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent: this.#agent,
          headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': payload.length },
          timeout: this.#timeoutMs,
        },
        (res) => {
          readBody(res)
            .then((text) => resolve(classify(res, text)))
            .catch(reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${this.#timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(networkError(e, url)));
      req.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_RESPONSE_BYTES) {
        res.destroy();
        reject(new TransientProvisioningError('UNAVAILABLE', `response larger than ${MAX_RESPONSE_BYTES} bytes`, undefined));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (e) => reject(new TransientProvisioningError('UNAVAILABLE', `response interrupted: ${e.message}`, undefined, { cause: e })));
  });
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? null : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

function classify(res: IncomingMessage, text: string): unknown {
  const status = res.statusCode ?? 0;
  const body = parseJson(text);
  if (status >= 200 && status < 300) {
    if (body === undefined) throw new FleetkeyError('INTERNAL', { detail: `device plane answered ${status} with a body that is not JSON` });
    return body;
  }
  const err = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown; requestId?: unknown };
  const code = typeof err.code === 'string' ? err.code : undefined;
  const requestId = typeof err.requestId === 'string' ? err.requestId : undefined;
  if (status === 429) {
    const after = parseRetryAfter(headerOf(res, 'retry-after'));
    return throwing(new TransientProvisioningError('RATE_LIMITED', `429 ${code ?? ''}`.trim(), after));
  }
  if (status >= 500 || status === 0) {
    const after = parseRetryAfter(headerOf(res, 'retry-after'));
    return throwing(new TransientProvisioningError('UNAVAILABLE', `${status} ${code ?? ''}`.trim(), after));
  }
  return throwing(new ProvisioningRefusedError(code ?? (status === 403 ? 'PROVISIONING_REFUSED' : 'VALIDATION_FAILED'), status, requestId, `${status} ${code ?? '(no code)'}`));
}

function headerOf(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function throwing(e: Error): never {
  throw e;
}

function networkError(e: Error, url: string): Error {
  const code = errorCode(e);
  if (code !== undefined && (UNTRUSTED_SERVER.has(code) || SERVER_CERT_OUT_OF_VALIDITY.has(code))) {
    // Not retried: see UNTRUSTED_SERVER. The detail names the check, never key material.
    return new FleetkeyError('UNAVAILABLE', { detail: `device plane at ${url} is not trusted by the bundle's CA file: ${code}`, cause: e });
  }
  return new TransientProvisioningError('UNAVAILABLE', `cannot reach ${url}: ${code ?? e.message}`, undefined, { cause: e });
}
