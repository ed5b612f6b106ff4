import type { Device, DeviceEvidence, DeviceList, EvidenceRecord } from '@fleetkey/protocol';
import { Command } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { collectPairs, emit, fields, table } from '../output.js';
import { deviceKeyCommand } from './device-key.js';
import { deviceAttestationCommand } from './attestation.js';

export function showDevice(d: Device): string {
  return fields([
    ['id', d.id],
    ['status', d.status],
    ['status reason', d.statusReason],
    ['name', d.name],
    ['model', d.model],
    ['serials', Object.entries(d.serials).map(([k, v]) => `${k}=${v}`).join(', ')],
    ['hw fingerprint', d.hardwareFingerprint],
    ['created', d.createdAt],
    ['updated', d.updatedAt],
  ]);
}

function showEvidence(e: DeviceEvidence): string {
  const line = (r: EvidenceRecord) => `${r.method} ${Object.entries(r.identity).map(([k, v]) => `${k}=${v}`).join(' ')}`;
  return fields([
    ['device', e.deviceId],
    ['evidence', e.current === null ? null : line(e.current)],
    ['recorded', e.current?.recordedAt ?? null],
    ['last seen', e.current?.lastSeenAt ?? null],
    ...e.history.map((r): [string, string] => ['reset', `${r.resetAt ?? ''} by ${r.resetBy ?? ''} (${r.resetReason ?? ''}): ${line(r)}`]),
  ]);
}

/** The evidence bound to a device's physical identity (issue 10); changing it is an admin's decision. */
function evidenceCommand(): Command {
  const cmd = new Command('evidence').description('what proved a device at admission (TPM EK, IDevID, symmetric key id)');
  cmd
    .command('show <id>')
    .description('the evidence recorded for a device, and the evidence reset before')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const e = await Client.from(g).request<DeviceEvidence>('GET', `/v1/devices/${encodeURIComponent(id.toLowerCase())}/evidence`);
      emit(g, e, () => showEvidence(e));
    });
  cmd
    .command('reset <id>')
    .description('release the evidence of a repaired device (new TPM, new IDevID): its next admission records the new one (admin)')
    .requiredOption('--reason <text>', 'why (kept in the audit log)')
    .action(async (id: string, o: { reason: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const e = await Client.from(g).request<DeviceEvidence>('POST', `/v1/devices/${encodeURIComponent(id.toLowerCase())}/evidence/reset`, { reason: o.reason });
      emit(g, e, () => `evidence of device ${e.deviceId} reset; its next admission records new evidence`);
    });
  return cmd;
}

export function deviceCommand(): Command {
  const cmd = new Command('device').description('physical identities: register, inspect, suspend, revoke, retire');
  cmd.addCommand(deviceKeyCommand());

  cmd
    .command('create')
    .description('register a physical identity (id minted as a CSPRNG UUIDv4 when omitted)')
    .option('--id <uuid>', 'use this device id')
    .option('--model <model>', 'device model')
    .option('--serial <component=SN>', 'hardware component serial (repeatable)', collectPairs)
    .action(async (o: { id?: string; model?: string; serial?: Record<string, string> }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const body = { ...(o.id === undefined ? {} : { id: o.id.toLowerCase() }), ...(o.model === undefined ? {} : { model: o.model }), ...(o.serial === undefined ? {} : { serials: o.serial }) };
      const d = await Client.from(g).request<Device>('POST', '/v1/devices', body);
      emit(g, d, () => showDevice(d));
    });

  cmd
    .command('show <id>')
    .description('show one device')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const d = await Client.from(g).request<Device>('GET', `/v1/devices/${encodeURIComponent(id.toLowerCase())}`);
      emit(g, d, () => showDevice(d));
    });

  cmd
    .command('list')
    .description('list devices')
    .option('--status <status>', 'only devices in this status')
    .option('--version <semver>', 'only devices that reported this version installed')
    .option('--limit <n>', 'at most n devices', '100')
    .option('--after <id>', 'page after this device id')
    .action(async (o: { status?: string; version?: string; limit: string; after?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const q = new URLSearchParams({ limit: o.limit });
      if (o.status !== undefined) q.set('status', o.status);
      if (o.version !== undefined) q.set('installedVersion', o.version);
      if (o.after !== undefined) q.set('after', o.after);
      const r = await Client.from(g).request<DeviceList>('GET', `/v1/devices?${q}`);
      emit(g, r, () => table(['ID', 'STATUS', 'NAME', 'MODEL', 'VERSION'], r.devices.map((d) => [d.id, d.status, d.name, d.model, d.installedVersion])));
    });

  for (const [action, help] of [
    ['suspend', 'suspend a device (reversible with resume)'],
    ['resume', 'lift a suspension'],
    ['revoke', 'revoke a device for good (its connections are cut, it cannot be bound again)'],
    ['retire', 'retire a device at end of life (frees its name)'],
  ] as const) {
    cmd
      .command(`${action} <id>`)
      .description(help)
      .option('--reason <text>', 'why (kept in history and audit)')
      .action(async (id: string, o: { reason?: string }, c: Command) => {
        const g = c.optsWithGlobals<GlobalOptions>();
        const d = await Client.from(g).request<Device>('POST', `/v1/devices/${encodeURIComponent(id.toLowerCase())}/${action}`, o.reason === undefined ? {} : { reason: o.reason });
        emit(g, d, () => `device ${d.id} is now ${d.status}`);
      });
  }
  cmd.addCommand(evidenceCommand());
  cmd.addCommand(deviceAttestationCommand());
  return cmd;
}
