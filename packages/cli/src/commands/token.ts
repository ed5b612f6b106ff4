import type { ApiToken, CreatedToken } from '@fleetkey/protocol';
import { ROLES } from '@fleetkey/protocol/base';
import { Command, Option } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';

export function tokenCommand(): Command {
  const cmd = new Command('token').description('operator API tokens');
  cmd
    .command('create')
    .description('create an API token (the secret is shown once)')
    .addOption(new Option('--role <role>', 'role').choices([...ROLES]).makeOptionMandatory())
    .option('--name <name>', 'label')
    .action(async (o: { role: string; name?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<CreatedToken>('POST', '/v1/tokens', { role: o.role, ...(o.name === undefined ? {} : { name: o.name }) });
      emit(g, r, () => `${r.secret}\n(token ${r.token.id}, role ${r.token.role}: store the secret now, it is not shown again)`);
    });
  cmd
    .command('list')
    .description('list API tokens (never their secrets)')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ tokens: ApiToken[] }>('GET', '/v1/tokens');
      emit(g, r, () =>
        table(['ID', 'ROLE', 'NAME', 'LAST4', 'LAST USED', 'REVOKED'], r.tokens.map((t) => [t.id, t.role, t.name, t.lastFour, t.lastUsedAt, t.revokedAt])),
      );
    });
  cmd
    .command('revoke <id>')
    .description('revoke an API token')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const t = await Client.from(g).request<ApiToken>('POST', `/v1/tokens/${encodeURIComponent(id)}/revoke`);
      emit(g, t, () => `token ${t.id} revoked`);
    });
  return cmd;
}
