import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';

interface Points {
  points: { deviceId: string; name: string | null; receivedAt: string; payload: unknown }[];
}

const sinceParam = (since: string | undefined): string => (since === undefined ? '' : `&since=${encodeURIComponent(new Date(since).toISOString())}`);

export function dataCommand(): Command {
  const cmd = new Command('data').description('what devices sent: diagnostics by name, telemetry by device');
  cmd
    .command('diagnostics <nameOrDevice>')
    .description('diagnostics under a name (across replacements), or of a device (--device)')
    .option('--device', 'the argument is a device id (diagnostics sent while it had no name)')
    .option('--since <time>', 'RFC 3339 time')
    .option('--limit <n>', 'at most n points', '1000')
    .action(async (arg: string, o: { device?: boolean; since?: string; limit: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const key = o.device === true ? `deviceId=${encodeURIComponent(arg.toLowerCase())}` : `name=${encodeURIComponent(arg)}`;
      const r = await Client.from(g).request<Points>('GET', `/v1/data/diagnostics?${key}&limit=${encodeURIComponent(o.limit)}${sinceParam(o.since)}`);
      emit(g, r, () => table(['RECEIVED', 'DEVICE', 'NAME', 'PAYLOAD'], r.points.map((p) => [p.receivedAt, p.deviceId, p.name, JSON.stringify(p.payload)])));
    });
  cmd
    .command('telemetry <deviceId>')
    .description('internal telemetry of one physical device')
    .option('--since <time>', 'RFC 3339 time')
    .option('--limit <n>', 'at most n points', '1000')
    .action(async (deviceId: string, o: { since?: string; limit: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<Points>('GET', `/v1/data/telemetry?deviceId=${encodeURIComponent(deviceId.toLowerCase())}&limit=${encodeURIComponent(o.limit)}${sinceParam(o.since)}`);
      emit(g, r, () => table(['RECEIVED', 'PAYLOAD'], r.points.map((p) => [p.receivedAt, JSON.stringify(p.payload)])));
    });
  return cmd;
}

export function commandCommand(): Command {
  const cmd = new Command('command').description('feedback to devices, addressed to names');
  cmd
    .command('send <name>')
    .description('send a command to whichever device holds NAME (QoS 1, kept until acknowledged or expired)')
    .requiredOption('--type <type>', 'command type, e.g. set-speed')
    .option('--payload <json>', 'JSON payload (or @file)')
    .option('--ttl <duration>', 'expiry, e.g. 1h', '1h')
    .action(async (name: string, o: { type: string; payload?: string; ttl: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const raw = o.payload?.startsWith('@') === true ? readFileSync(o.payload.slice(1), 'utf8') : o.payload;
      let payload: unknown;
      try {
        payload = raw === undefined ? undefined : JSON.parse(raw);
      } catch {
        throw new Error('--payload is not JSON');
      }
      const r = await Client.from(g).request<{ id: string; status: string }>('POST', '/v1/commands', { name, type: o.type, ttl: o.ttl, ...(payload === undefined ? {} : { payload }) });
      emit(g, r, () => `command ${r.id} ${r.status}`);
    });
  cmd
    .command('show <id>')
    .description('status and result of a command')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<Record<string, unknown>>('GET', `/v1/commands/${encodeURIComponent(id)}`);
      emit(g, r, () => Object.entries(r).map(([k, v]) => `${k.padEnd(12)} ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v ?? '-')}`).join('\n'));
    });
  return cmd;
}
