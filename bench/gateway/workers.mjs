// `fleetkey serve` as an operator starts it, for the benchmarks: the built CLI in a child process
// (`--workers N` on PostgreSQL, or one cluster node), every listener on an ephemeral 127.0.0.1
// port read back from its stderr, and a scratch PostgreSQL database per run.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const BIN = fileURLToPath(new URL('../../packages/cli/bin/fleetkey.js', import.meta.url));
export const PG_ADMIN = process.env.FLEETKEY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh database on the local PostgreSQL (trust auth), dropped by `drop()`. */
export async function createPgDb(prefix) {
  const name = `${prefix}_${randomUUID().slice(0, 8)}`;
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  await c.query(`create database ${name}`);
  await c.end();
  const u = new URL(PG_ADMIN);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    query: async (sql, params = []) => {
      const q = new pg.Client({ connectionString: u.toString() });
      await q.connect();
      try {
        return (await q.query(sql, params)).rows;
      } finally {
        await q.end();
      }
    },
    drop: async () => {
      const d = new pg.Client({ connectionString: PG_ADMIN });
      await d.connect();
      await d.query(`drop database if exists ${name} with (force)`);
      await d.end();
    },
  };
}

/**
 * Starts `fleetkey serve` in `dataDir` on `databaseUrl` with extra CLI args (`--workers 2`,
 * `--cluster nats://… --node-id a`). The bench provisions thousands of devices from one address, so
 * the config file raises the provisioning per-source limit (as server-child.mjs does), nothing else.
 */
export async function startServe(dataDir, databaseUrl, args, { children, timeoutMs = 120_000 } = {}) {
  const configFile = join(dataDir, '..', `serve-config-${randomUUID().slice(0, 8)}.json`);
  writeFileSync(configFile, JSON.stringify({ provisioning: { perSourcePerMinute: 10_000_000, perSourceBurst: 1_000_000 } }), { mode: 0o600 });
  const proc = spawn(process.execPath, [BIN, 'serve', '--data-dir', dataDir, '--config', configFile, '--host', '127.0.0.1', '--port', '0', '--device-port', '0', '--mqtt-port', '0', ...args], {
    env: { PATH: process.env.PATH ?? '', FLEETKEY_LOG_LEVEL: 'silent', DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children?.push(proc);
  let err = '';
  const urls = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`fleetkey serve did not start in ${timeoutMs} ms: ${err}`)), timeoutMs);
    proc.stderr.on('data', (d) => {
      err += d.toString();
      const url = /listening on (http:\/\/\S+)/.exec(err)?.[1];
      if (url === undefined) return;
      clearTimeout(t);
      resolve({ url, deviceUrl: /device plane on (https:\/\/\S+)/.exec(err)?.[1], mqttUrl: /MQTT gateway on (mqtts:\/\/\S+)/.exec(err)?.[1] });
    });
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`fleetkey serve exited ${code}: ${err}`));
    });
  });
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  return {
    proc,
    pid: proc.pid,
    info: { ...urls, mqttPort: Number(new URL(urls.mqttUrl).port), adminToken },
    bundlePem: readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8'),
    /** The primary and every process it forked (node:cluster workers). */
    pids: () => [proc.pid, ...childPids(proc.pid)],
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill('SIGTERM');
      }),
  };
}

function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
