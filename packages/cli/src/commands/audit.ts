import type { AuditEntry, AuditVerifyResult } from '@fleetkey/protocol';
import { Command } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';

export function auditCommand(): Command {
  const cmd = new Command('audit').description('the hash-chained audit log');
  cmd
    .command('list')
    .description('list audit entries, oldest first')
    .option('--subject <subject>', 'e.g. device:<id> or name:<name>')
    .option('--action <action>', 'e.g. name.replace')
    .option('--after <seq>', 'entries after this sequence number')
    .option('--limit <n>', 'at most n entries', '100')
    .action(async (o: { subject?: string; action?: string; after?: string; limit: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const q = new URLSearchParams({ limit: o.limit });
      if (o.subject !== undefined) q.set('subject', o.subject);
      if (o.action !== undefined) q.set('action', o.action);
      if (o.after !== undefined) q.set('after', o.after);
      const r = await Client.from(g).request<{ entries: AuditEntry[] }>('GET', `/v1/audit?${q}`);
      emit(g, r, () => table(['SEQ', 'AT', 'ACTOR', 'ACTION', 'SUBJECT', 'OUTCOME', 'CODE'], r.entries.map((e) => [e.seq, e.at, e.actor, e.action, e.subject, e.outcome, e.code])));
    });
  cmd
    .command('verify')
    .description('check the hash chain end to end; names the first broken entry')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<AuditVerifyResult>('POST', '/v1/audit/verify');
      emit(g, r, () => (r.ok ? `audit chain intact: ${r.entries} entries` : `audit chain BROKEN at entry ${r.firstBrokenSeq}: ${r.reason} (${r.entries} entries verified before it)`));
      if (!r.ok) process.exitCode = 1;
    });
  return cmd;
}
