import { existsSync, readFileSync } from 'node:fs';
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

export class Client {
  constructor(
    private readonly url: string,
    private readonly token: string | undefined,
  ) {}

  static from(o: GlobalOptions): Client {
    return new Client(resolveUrl(o), resolveToken(o));
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await fetch(`${this.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      } catch (e) {
        throw new Error(`cannot reach the Fleetkey server at ${this.url} (${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message})`);
      }
      // 429 RATE_LIMITED refuses before anything runs, so waiting out Retry-After and sending the
      // same request again is safe (bulk commands such as manufacture meet the per-token budget).
      const wait = Number(res.headers.get('retry-after'));
      if (res.status !== 429 || attempt >= RATE_LIMIT_ATTEMPTS || !Number.isFinite(wait) || wait > 60) break;
      await res.text();
      await new Promise((r) => setTimeout(r, wait * 1000));
    }
    const text = await res.text();
    const parsed: unknown = text === '' ? null : JSON.parse(text);
    if (!res.ok) throw new ApiError(res.status, parsed as ErrorBody);
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
      throw new Error(`cannot reach the Fleetkey server at ${this.url} (${(e as Error).message})`);
    }
    const text = await res.text();
    const parsed: unknown = text === '' ? null : JSON.parse(text);
    if (!res.ok) throw new ApiError(res.status, parsed as ErrorBody);
    return parsed as T;
  }

  /** GET of a public, binary object (a CRL, a CA certificate); null when the server has none (404). */
  async bytes(path: string): Promise<Buffer | null> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`);
    } catch (e) {
      throw new Error(`cannot reach the Fleetkey server at ${this.url} (${(e as Error).message})`);
    }
    if (res.status === 404) return null;
    if (!res.ok) throw new ApiError(res.status, (await res.json()) as ErrorBody);
    return Buffer.from(await res.arrayBuffer());
  }
}
