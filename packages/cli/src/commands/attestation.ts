import type { AttestationPolicy, AttestationPolicyBody, DeviceAttestations } from '@fleetkey/protocol';
import { Command, InvalidArgumentError } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, fields, table } from '../output.js';

/** `--pcr 7=<hex>[,<hex>]` (repeatable) into { "7": [hex, ...] }. */
function collectDigests(value: string, prev: Record<string, string[]> | undefined): Record<string, string[]> {
  const m = /^(\d{1,2})=([0-9a-fA-F]{64}(?:,[0-9a-fA-F]{64})*)$/.exec(value);
  if (m === null) throw new InvalidArgumentError('expected <pcr>=<sha256 hex>[,<sha256 hex>...]');
  const out = { ...(prev ?? {}) };
  out[m[1] as string] = [...(out[m[1] as string] ?? []), ...(m[2] as string).toLowerCase().split(',')];
  return out;
}
const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

export function showAttestations(a: DeviceAttestations): string {
  return [
    fields([
      ['device', a.deviceId],
      ['status', a.status],
      ['quarantined', a.quarantined ? `yes: ${a.quarantineReason ?? ''}` : 'no'],
      ['last trusted', a.lastTrustedAt],
      ['due', a.dueAt],
    ]),
    '',
    table(['at', 'verdict', 'code', 'action', 'reason'], a.history.map((h) => [h.at, h.verdict, h.code, h.action, h.reason])),
  ].join('\n');
}

function showPolicy(p: AttestationPolicy): string {
  return fields([
    ['id', p.id],
    ['scope', `${p.scope} ${p.key}`],
    ['pcrs', `sha256:${p.pcrs.join(',')}`],
    ['reference', p.reference === null ? null : Object.entries(p.reference).map(([k, v]) => `${k}=${v.map((x) => x.slice(0, 12)).join('|')}`).join(' ')],
    ['event log', p.eventLog === null ? null : Object.entries(p.eventLog).map(([k, v]) => `${k}: ${v.length} digests`).join(' ')],
    ['interval', `${p.intervalSeconds} s`],
    ['max age', `${p.maxAgeSeconds} s`],
    ['on failure', p.onFailure],
    ['on stale', p.onStale],
    ['required on connect', p.requireOnConnect],
  ]);
}

/** `fleetkey attestation policy set|list|remove` (issue 13). */
export function attestationCommand(): Command {
  const cmd = new Command('attestation').description('measured-boot attestation: policies per enrollment or model');
  const policy = new Command('policy').description('which boot states are trusted, how often devices attest, and what happens otherwise');
  policy
    .command('set')
    .description('create or replace the policy of an enrollment or a model')
    .requiredOption('--scope <scope>', 'enrollment | model')
    .requiredOption('--key <key>', 'the enrollment id or the model name')
    .requiredOption('--pcrs <list>', 'SHA-256 PCRs to quote, e.g. 0,2,4,7')
    .option('--reference <pcr=hex[,hex]>', 'accepted value(s) of a PCR (repeatable)', collectDigests)
    .option('--event-log <pcr=hex[,hex]>', 'allowed event digests of a PCR for an event-log replay (repeatable)', collectDigests)
    .requiredOption('--interval <seconds>', 'how often devices attest', int)
    .option('--max-age <seconds>', 'stale after this long without an attestation (default 2 × interval)', int)
    .requiredOption('--on-failure <action>', 'quarantine | revoke | alert')
    .option('--on-stale <action>', 'quarantine | revoke | alert (default alert)')
    .option('--require-on-connect', 'refuse MQTT connects without a trusted attestation younger than max age')
    .action(async (o: { scope: string; key: string; pcrs: string; reference?: Record<string, string[]>; eventLog?: Record<string, string[]>; interval: number; maxAge?: number; onFailure: string; onStale?: string; requireOnConnect?: boolean }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const body = {
        scope: o.scope,
        key: o.key,
        pcrs: o.pcrs.split(',').map((s) => Number(s.trim())),
        ...(o.reference === undefined ? {} : { reference: o.reference }),
        ...(o.eventLog === undefined ? {} : { eventLog: o.eventLog }),
        intervalSeconds: o.interval,
        ...(o.maxAge === undefined ? {} : { maxAgeSeconds: o.maxAge }),
        onFailure: o.onFailure,
        ...(o.onStale === undefined ? {} : { onStale: o.onStale }),
        ...(o.requireOnConnect === true ? { requireOnConnect: true } : {}),
      } as AttestationPolicyBody;
      const p = await Client.from(g).request<AttestationPolicy>('PUT', '/v1/attestation/policies', body);
      emit(g, p, () => showPolicy(p));
    });
  policy
    .command('list')
    .description('every attestation policy')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ policies: AttestationPolicy[] }>('GET', '/v1/attestation/policies');
      emit(g, r, () => r.policies.map(showPolicy).join('\n\n') || 'no policies');
    });
  policy
    .command('remove <id>')
    .description('remove a policy (its devices stop being judged)')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      await Client.from(g).request<null>('DELETE', `/v1/attestation/policies/${encodeURIComponent(id.toLowerCase())}`);
      emit(g, { removed: id }, () => `policy ${id} removed`);
    });
  cmd.addCommand(policy);
  return cmd;
}

/** `fleetkey device attestation <ID>`: status, quarantine and the history of verdicts. */
export function deviceAttestationCommand(): Command {
  return new Command('attestation')
    .argument('<id>', 'device id')
    .description("a device's attestation status, quarantine reason and history")
    .option('--limit <n>', 'history entries', int)
    .action(async (id: string, o: { limit?: number }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const a = await Client.from(g).request<DeviceAttestations>('GET', `/v1/devices/${encodeURIComponent(id.toLowerCase())}/attestations${o.limit === undefined ? '' : `?limit=${o.limit}`}`);
      emit(g, a, () => showAttestations(a));
    });
}
