import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { FleetkeyServer } from '@fleetkey/server';

/**
 * A digest of every table's rows, to show that a refused request changed nothing. The audit log
 * is left out (refusals are audited, by design), and so is a token's last-used time (touched by
 * every authenticated request, refused or not), and a cluster node's heartbeat (written by the node
 * itself every second, issue 15).
 */
export async function tableDigest(server: FleetkeyServer): Promise<Record<string, string>> {
  const db = server.store.db;
  const tables = (await db.introspection.getTables()).map((t) => t.name).filter((n) => !n.startsWith('audit_') && !n.startsWith('kysely_') && !n.startsWith('sqlite_'));
  const out: Record<string, string> = {};
  for (const name of tables.sort()) {
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db)).rows;
    const lines = rows.map((r) => {
      const { last_used_at: _ignored, ...rest } = r;
      if (name === 'cluster_nodes') delete rest['heartbeat_at'];
      return JSON.stringify(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b)), (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
    });
    out[name] = `${rows.length}:${createHash('sha256').update(lines.sort().join('\n')).digest('hex').slice(0, 16)}`;
  }
  return out;
}
