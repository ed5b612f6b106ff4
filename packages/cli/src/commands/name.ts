import type { Name, NameHistory, ReplaceResult } from '@fleetkey/protocol';
import { ERRORS } from '@fleetkey/protocol/base';
import { Command } from 'commander';
import { ApiError, Client, type GlobalOptions } from '../client.js';
import { collectPairs, emit, fields, table } from '../output.js';

const path = (n: string, rest = ''): string => `/v1/names/${encodeURIComponent(n)}${rest}`;

function showName(n: Name): string {
  return fields([
    ['name', n.name],
    ['device', n.deviceId],
    ['bound since', n.boundSince],
    ['tags', Object.entries(n.tags).map(([k, v]) => `${k}=${v}`).join(', ')],
    ['aliases', n.aliases.join(', ')],
    ['created', n.createdAt],
  ]);
}

export function nameCommand(): Command {
  const cmd = new Command('name').description('logical identities: create, bind, replace, rename, history');

  cmd
    .command('create <name>')
    .description('create a logical name')
    .option('--tag <key=value>', 'tag (repeatable)', collectPairs)
    .action(async (name: string, o: { tag?: Record<string, string> }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const n = await Client.from(g).request<Name>('POST', '/v1/names', { name, ...(o.tag === undefined ? {} : { tags: o.tag }) });
      emit(g, n, () => showName(n));
    });

  cmd
    .command('show <name>')
    .description('show a name and the device it is bound to')
    .action(async (name: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const n = await Client.from(g).request<Name>('GET', path(name));
      emit(g, n, () => showName(n));
    });

  cmd
    .command('list')
    .description('list names')
    .option('--limit <n>', 'at most n names', '100')
    .option('--after <name>', 'names after this one (the last name of the previous page)')
    .option('--tag <key=value>', 'only names carrying this tag')
    .action(async (o: { limit: string; after?: string; tag?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const q = new URLSearchParams({ limit: o.limit });
      if (o.after !== undefined) q.set('after', o.after);
      if (o.tag !== undefined) q.set('tag', o.tag);
      const r = await Client.from(g).request<{ names: Name[] }>('GET', `/v1/names?${q.toString()}`);
      emit(g, r, () => table(['NAME', 'DEVICE', 'SINCE'], r.names.map((n) => [n.name, n.deviceId, n.boundSince])));
    });

  cmd
    .command('bind <name> <deviceId>')
    .description('bind an unbound name to an unbound device')
    .option('--reason <text>', 'why')
    .action(async (name: string, deviceId: string, o: { reason?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const n = await Client.from(g).request<Name>('POST', path(name, '/bind'), { deviceId: deviceId.toLowerCase(), ...(o.reason === undefined ? {} : { reason: o.reason }) });
      emit(g, n, () => `${n.name} → ${n.deviceId}`);
    });

  cmd
    .command('unbind <name>')
    .description('close the current binding of a name')
    .option('--reason <text>', 'why')
    .action(async (name: string, o: { reason?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const n = await Client.from(g).request<Name>('POST', path(name, '/unbind'), o.reason === undefined ? {} : { reason: o.reason });
      emit(g, n, () => `${n.name} is unbound`);
    });

  cmd
    .command('replace <name>')
    .description('move a name to a new device in one transaction')
    .requiredOption('--with <deviceId>', 'the replacement device')
    .option('--revoke-old', 'revoke the device being replaced (cuts its connections)')
    .option('--reason <text>', 'why')
    .action(async (name: string, o: { with: string; revokeOld?: boolean; reason?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const client = Client.from(g);
      // Optimistic concurrency: replace exactly the binding we looked at; if another operator
      // rebinds the name in between, the server answers BINDING_CONFLICT instead of stacking both.
      const current = await client.request<Name>('GET', path(name));
      // The server's own answer for an unbound name; there is no binding to name as expected.
      if (current.deviceId === null) throw new ApiError(409, { code: 'NAME_NOT_BOUND', message: ERRORS.NAME_NOT_BOUND.message, requestId: '' });
      const r = await client.request<ReplaceResult>('POST', path(name, '/replace'), {
        deviceId: o.with.toLowerCase(),
        expectedDeviceId: current.deviceId,
        revokeOld: o.revokeOld === true,
        ...(o.reason === undefined ? {} : { reason: o.reason }),
      });
      emit(g, r, () => `${r.name.name}: ${r.previousDeviceId} → ${r.name.deviceId}${r.oldDeviceRevoked ? ` (${r.previousDeviceId} revoked)` : ''}`);
    });

  cmd
    .command('rename <old> <new>')
    .description('rename; the old name stays as an alias that says where it went')
    .action(async (oldName: string, newName: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const n = await Client.from(g).request<Name>('POST', path(oldName, '/rename'), { newName });
      emit(g, n, () => `${oldName} is now ${n.name}`);
    });

  cmd
    .command('history <name>')
    .description('every binding of the name, oldest first')
    .action(async (name: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const h = await Client.from(g).request<NameHistory>('GET', path(name, '/history'));
      emit(g, h, () =>
        table(
          ['FROM', 'TO', 'DEVICE', 'REASON', 'ACTOR'],
          h.bindings.map((b) => [b.from, b.to ?? '(current)', b.deviceId, b.unbindReason ?? b.bindReason, b.unbindActor ?? b.bindActor]),
        ) + (h.aliases.length > 0 ? `\nformerly: ${h.aliases.join(', ')}` : ''),
      );
    });
  return cmd;
}
