import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadConfig, type FleetkeyServer } from '@fleetkey/server';
import type { Kysely } from 'kysely';
import { createPgDatabase, type TestDialect } from '../support/databases.js';

/** A server that can be stopped and started again on the same data dir and database (state across restarts). */
export interface RestartableServer {
  readonly server: FleetkeyServer;
  readonly adminToken: string;
  call(method: string, path: string, o?: { token?: string | undefined; body?: unknown }): Promise<{ status: number; body: any }>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRestartable(dialect: TestDialect, tickIntervalMs = 100): Promise<RestartableServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetkey-rollouts-'));
  const pg = dialect === 'postgres' ? await createPgDatabase() : undefined;
  const boot = async (): Promise<FleetkeyServer> => {
    const config = loadConfig({
      env: { FLEETKEY_LOG_LEVEL: 'silent' },
      overrides: { dataDir, port: 0, host: '127.0.0.1', ...(pg === undefined ? {} : { databaseUrl: pg.url }) },
    });
    config.deviceHttp.port = 0;
    config.gateway.port = 0;
    config.rollouts.tickIntervalMs = tickIntervalMs;
    return createServer(config);
  };
  let server = await boot();
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const self: RestartableServer = {
    get server() {
      return server;
    },
    adminToken,
    call: async (method, path, o = {}) => {
      const headers: Record<string, string> = { authorization: `Bearer ${o.token ?? adminToken}` };
      if (o.body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${server.url}${path}`, { method, headers, ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
      const text = await res.text();
      return { status: res.status, body: text === '' ? null : JSON.parse(text) };
    },
    restart: async () => {
      await server.close();
      server = await boot();
    },
    stop: async () => {
      await server.close();
      await pg?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return self;
}

/**
 * A release row as the releases module records it (migration 010). The engine only needs the
 * row; the signed artifact path is tested where devices install it (simulate-rollout.test.ts).
 */
export async function insertRelease(db: Kysely<any>, version: string): Promise<string> {
  const id = randomUUID();
  await db
    .insertInto('releases')
    .values({ id, model: 'kuka-kr16', version, min_version: null, target_name: `fw-${version}-${id.slice(0, 8)}.bin`, sha256: '0'.repeat(64), length: 1, signed_by: 'test', targets_version: 1, created_at: Date.now(), created_by: 'test' })
    .execute();
  return id;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Creates `count` names `prefix-NNN` with tags through the operator API. */
export async function createNames(call: RestartableServer['call'], prefix: string, count: number, tags: Record<string, string> = {}): Promise<void> {
  for (let i = 0; i < count; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, async (_, k) => {
        const r = await call('POST', '/v1/names', { body: { name: `${prefix}-${String(i + k).padStart(3, '0')}`, tags } });
        if (r.status !== 201) throw new Error(`name create: ${r.status} ${JSON.stringify(r.body)}`);
      }),
    );
  }
}
