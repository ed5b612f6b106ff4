import { existsSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type * as Https from 'node:https';
import { join, resolve } from 'node:path';
import type { ErrorBody } from '@fleetkey/protocol';

export interface GlobalOptions {
  url?: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

/** A refusal from the server, carrying its stable code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message);
  }
}

export class UsageError extends Error {}

/** The server did not answer at all (refused, reset, DNS, timeout): exit code 3, `UNREACHABLE` in --json. */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the Fleetkey server at ${url} (${reason})`);
  }
}

const causeOf = (e: unknown): string => {
  const c = (e as Error).cause;
  const code = (e as { code?: unknown }).code;
  return c instanceof Error ? c.message : typeof code === 'string' ? code : (e as Error).message;
};

function dataDir(o: GlobalOptions): string {
  return resolve(o.dataDir ?? process.env['FLEETKEY_DATA_DIR'] ?? 'fleetkey-data');
}

/** Server URL: flag, then FLEETKEY_URL, then the running server's note in the data dir. */
export function resolveUrl(o: GlobalOptions): string {
  if (o.url !== undefined) return o.url.replace(/\/$/, '');
  const env = process.env['FLEETKEY_URL'];
  if (env !== undefined && env !== '') return env.replace(/\/$/, '');
  const info = join(dataDir(o), 'server.json');
  if (existsSync(info)) {
    const parsed = JSON.parse(readFileSync(info, 'utf8')) as { url?: unknown };
    if (typeof parsed.url === 'string') return parsed.url;
  }
  return 'http://127.0.0.1:8400';
}

/** API token: flag, then FLEETKEY_TOKEN, then the admin token file a local server wrote (0600). */
export function resolveToken(o: GlobalOptions): string | undefined {
  if (o.token !== undefined) return o.token;
  const env = process.env['FLEETKEY_TOKEN'];
  if (env !== undefined && env !== '') return env;
  const file = join(dataDir(o), 'admin.token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  return undefined;
}

const RATE_LIMIT_ATTEMPTS = 5;

interface RawResponse {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly body: Buffer;
}

// node:http rather than fetch: loading fetch's HTTP stack costs about as much CPU as the rest of a
// command together (issue 14: a command answers in ≤ 0.3 s). Idle keep-alive sockets are unref'd
// by the agent, so they never hold the process open; bulk commands reuse them.
// node:https (and TLS with it) is loaded only for an https:// server: most CLI runs talk to a local
// http:// operator listener and would pay for it at every start.
const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
let https: { module: typeof Https; agent: Https.Agent } | undefined;

async function send(url: URL, method: string, headers: Record<string, string>, body: string | undefined): Promise<RawResponse> {
  const secure = url.protocol === 'https:';
  if (secure && https === undefined) {
    const module = await import('node:https');
    https = { module, agent: new module.Agent({ keepAlive: true, maxSockets: 64 }) };
  }
  return new Promise((resolve, reject) => {
    const options = { method, headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } };
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const ra = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(ra) ? ra[0] : ra, body: Buffer.concat(chunks) });
      });
    };
    const req = secure ? https!.module.request(url, { ...options, agent: https!.agent }, onResponse) : httpRequest(url, { ...options, agent: httpAgent }, onResponse);
    req.on('error', reject);
    req.end(body);
  });
}

export class Client {
  constructor(
    private readonly url: string,
    private readonly token: string | undefined,
  ) {}

  static from(o: GlobalOptions): Client {
    return new Client(resolveUrl(o), resolveToken(o));
  }

  #target(path: string): URL {
    try {
      return new URL(`${this.url}${path}`);
    } catch {
      throw new UsageError(`not a URL: ${this.url} (--url, FLEETKEY_URL)`);
    }
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const target = this.#target(path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let res: RawResponse;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await send(target, method, headers, payload);
      } catch (e) {
        throw new UnreachableError(this.url, causeOf(e));
      }
      // 429 RATE_LIMITED refuses before anything runs, so waiting out Retry-After and sending the
      // same request again is safe (bulk commands such as manufacture meet the per-token budget).
      const wait = Number(res.retryAfter);
      if (res.status !== 429 || attempt >= RATE_LIMIT_ATTEMPTS || !Number.isFinite(wait) || wait > 60) break;
      await new Promise((r) => setTimeout(r, wait * 1000));
    }
    const text = res.body.toString('utf8');
    const parsed: unknown = text === '' ? null : JSON.parse(text);
    if (res.status < 200 || res.status > 299) throw new ApiError(res.status, parsed as ErrorBody);
    return parsed as T;
  }

  /** POSTs a file streamed from disk (an update artifact); the answer as JSON. */
  async upload<T>(path: string, body: ReadableStream<Uint8Array> | NodeJS.ReadableStream, length: number): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/octet-stream', 'content-length': String(length) };
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { method: 'POST', headers, body: body as never, duplex: 'half' } as RequestInit);
    } catch (e) {
      throw new UnreachableError(this.url, causeOf(e));
    }
    const text = await res.text();
    const parsed: unknown = text === '' ? null : JSON.parse(text);
    if (!res.ok) throw new ApiError(res.status, parsed as ErrorBody);
    return parsed as T;
  }

  /** GET of a public, binary object (a CRL, a CA certificate); null when the server has none (404). */
  async bytes(path: string): Promise<Buffer | null> {
    let res: RawResponse;
    try {
      res = await send(this.#target(path), 'GET', {}, undefined);
    } catch (e) {
      throw new UnreachableError(this.url, causeOf(e));
    }
    if (res.status === 404) return null;
    if (res.status < 200 || res.status > 299) throw new ApiError(res.status, JSON.parse(res.body.toString('utf8')) as ErrorBody);
    return res.body;
  }
}
