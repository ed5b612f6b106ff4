import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadConfig, type CreateOptions, type FleetkeyServer } from '@fleetkey/server';
import { createPgDatabase, type TestDialect } from './databases.js';

export interface TestServer {
  readonly server: FleetkeyServer;
  readonly url: string;
  readonly dataDir: string;
  readonly adminToken: string;
  readonly databaseUrl: string | undefined;
  call(method: string, path: string, options?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function startTestServer(dialect: TestDialect, options: CreateOptions & { config?: Record<string, unknown> } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetkey-test-'));
  const pgdb = dialect === 'postgres' ? await createPgDatabase() : undefined;
  const config = loadConfig({
    env: { FLEETKEY_LOG_LEVEL: 'silent' },
    overrides: { dataDir, port: 0, host: '127.0.0.1', ...(pgdb === undefined ? {} : { databaseUrl: pgdb.url }) },
  });
  // Both listeners on ephemeral ports: test files run in parallel.
  config.deviceHttp.port = 0;
  config.gateway.port = 0;
  // One level deep: `{ webhooks: { allowPrivateDestinations } }` keeps the other webhook defaults.
  for (const [k, v] of Object.entries(options.config ?? {})) {
    const cur = (config as Record<string, unknown>)[k];
    (config as Record<string, unknown>)[k] = isPlain(v) && isPlain(cur) ? { ...cur, ...v } : v;
  }
  const server = await createServer(config, options);
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const call: TestServer['call'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const token = o.token === undefined ? adminToken : o.token;
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    let body: string | undefined;
    if (o.raw !== undefined) body = o.raw;
    else if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${server.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : JSON.parse(text), headers: res.headers };
  };
  return {
    server,
    url: server.url,
    dataDir,
    adminToken,
    databaseUrl: pgdb?.url,
    call,
    stop: async () => {
      await server.close();
      await pgdb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
