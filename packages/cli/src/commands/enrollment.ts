import { readFileSync } from 'node:fs';
import type { Allocation, CreatedEnrollment, Enrollment } from '@fleetkey/protocol';
import { ATTESTATION_TYPES } from '@fleetkey/protocol/base';
import { Command, Option } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { collectPairs, emit, fields, table } from '../output.js';
import { enrollmentCrlCommand } from './enrollment-crl.js';

/** `fixed:NAME`, `template:{model}-{serial}`, `table:FILE.csv` (deviceId,name per line), `pending`. */
export function parseAllocation(spec: string): Allocation {
  if (spec === 'pending') return { type: 'pending' };
  const i = spec.indexOf(':');
  const kind = i < 0 ? spec : spec.slice(0, i);
  const arg = i < 0 ? '' : spec.slice(i + 1);
  if (kind === 'fixed' && arg !== '') return { type: 'fixed', name: arg };
  if (kind === 'template' && arg !== '') return { type: 'template', template: arg };
  if (kind === 'table' && arg !== '') {
    const entries: Record<string, string> = {};
    for (const [n, line] of readFileSync(arg, 'utf8').split(/\r?\n/).entries()) {
      const t = line.trim();
      if (t === '' || t.startsWith('#') || (n === 0 && /^device/i.test(t))) continue;
      const [deviceId, name, ...rest] = t.split(',').map((x) => x.trim());
      if (deviceId === undefined || name === undefined || rest.length > 0) throw new Error(`${arg}:${n + 1}: expected deviceId,name`);
      entries[deviceId.toLowerCase()] = name;
    }
    return { type: 'table', entries };
  }
  throw new Error(`allocation must be fixed:NAME, template:TEMPLATE, table:FILE.csv or pending, got "${spec}"`);
}

function showEnrollment(e: Enrollment): string {
  const alloc = e.allocation.type === 'fixed' ? `fixed ${e.allocation.name}` : e.allocation.type === 'template' ? `template ${e.allocation.template}` : e.allocation.type === 'table' ? `table (${Object.keys(e.allocation.entries).length} devices)` : 'pending';
  return fields([
    ['id', e.id],
    ['label', e.label],
    ['kind', `${e.kind} ${e.attestation}`],
    ['device', e.deviceId],
    ['enabled', e.enabled],
    ['allocation', alloc],
    ['tags', Object.entries(e.tags).map(([k, v]) => `${k}=${v}`).join(', ')],
    ['validity', e.certificateValidity],
    ['reprovisioning', e.reprovisioning],
    ['expires', e.expiresAt],
    ['devices', e.maxDevices === null ? e.devicesProvisioned : `${e.devicesProvisioned} of ${e.maxDevices}`],
    ['trust anchors', e.trustAnchors.map((a) => a.subject).join('; ')],
    ['revocation', e.crlUrls.length ? `${e.revocation} (CRLs from ${e.crlUrls.join(', ')})` : e.revocation],
  ]);
}

export function enrollmentCommand(): Command {
  const cmd = new Command('enrollment').description('who may provision, with which evidence, and what they get');
  cmd
    .command('create')
    .description('create an enrollment (a symmetric key is printed once)')
    .requiredOption('--label <text>', 'a label for operators')
    .addOption(new Option('--attestation <type>', 'evidence the devices present').choices([...ATTESTATION_TYPES]).makeOptionMandatory())
    .option('--device <id>', 'individual enrollment for this device (otherwise a group)')
    .option('--trust-anchor <file>', 'PEM: manufacturer CA(s) for x509, TPM manufacturer roots for tpm (a tpm enrollment needs roots or --ek-sha256)')
    .option('--idevid-fingerprint <sha256>', 'x509 individual: pin the birth certificate')
    .option('--ek-sha256 <sha256>', 'tpm individual: pin the endorsement key (SHA-256 of its TPM2B_PUBLIC); without it, --trust-anchor is required')
    .option('--allocation <spec>', 'fixed:NAME | template:{model}-{serial} | table:FILE.csv | pending', 'pending')
    .option('--tag <key=value>', 'tag for allocated names (repeatable)', collectPairs)
    .option('--validity <duration>', 'operational certificate validity, e.g. 30d')
    .addOption(new Option('--reprovision <policy>', 'on a second provisioning').choices(['keep', 'reset', 'never']))
    .option('--expires <time>', 'RFC 3339 time after which the enrollment refuses')
    .option('--max-devices <n>', 'at most n devices', (v) => Number.parseInt(v, 10))
    .option('--decision-webhook <url>', 'asked before allocation; only {"allow": true} within 2 s admits the device')
    .addOption(new Option('--revocation <policy>', 'x509 with --trust-anchor: a missing or stale CRL refuses (require, the default), is tolerated (best-effort), or CRLs are not checked (none)').choices(['require', 'best-effort', 'none']))
    .option('--crl-url <url>', 'x509 with --trust-anchor: where to fetch the anchors\' CRLs (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (o: { label: string; attestation: string; device?: string; trustAnchor?: string; idevidFingerprint?: string; ekSha256?: string; allocation: string; tag?: Record<string, string>; validity?: string; reprovision?: string; expires?: string; maxDevices?: number; decisionWebhook?: string; revocation?: string; crlUrl?: string[] }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const body = {
        label: o.label,
        kind: o.device === undefined ? 'group' : 'individual',
        attestation: o.attestation,
        allocation: parseAllocation(o.allocation),
        ...(o.device === undefined ? {} : { deviceId: o.device.toLowerCase() }),
        ...(o.trustAnchor === undefined ? {} : { trustAnchorsPem: readFileSync(o.trustAnchor, 'utf8') }),
        ...(o.idevidFingerprint === undefined ? {} : { idevidFingerprint: o.idevidFingerprint.toLowerCase().replaceAll(':', '') }),
        ...(o.ekSha256 === undefined ? {} : { ekPublicSha256: o.ekSha256.toLowerCase() }),
        ...(o.tag === undefined ? {} : { tags: o.tag }),
        ...(o.validity === undefined ? {} : { certificateValidity: o.validity }),
        ...(o.reprovision === undefined ? {} : { reprovisioning: o.reprovision }),
        ...(o.expires === undefined ? {} : { expiresAt: new Date(o.expires).toISOString() }),
        ...(o.maxDevices === undefined ? {} : { maxDevices: o.maxDevices }),
        ...(o.decisionWebhook === undefined ? {} : { decisionWebhookUrl: o.decisionWebhook }),
        ...(o.revocation === undefined ? {} : { revocation: o.revocation }),
        ...(o.crlUrl === undefined ? {} : { crlUrls: o.crlUrl }),
      };
      const r = await Client.from(g).request<CreatedEnrollment>('POST', '/v1/enrollments', body);
      emit(g, r, () =>
        showEnrollment(r.enrollment) +
        (r.groupKey === undefined ? '' : `\nsymmetric key (shown once; store it offline): ${r.groupKey}`) +
        (r.decisionSecret === undefined ? '' : `\ndecision webhook signing secret (shown once): ${r.decisionSecret}`),
      );
    });
  cmd
    .command('list')
    .description('list enrollments')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ enrollments: Enrollment[] }>('GET', '/v1/enrollments');
      emit(g, r, () => table(['ID', 'LABEL', 'KIND', 'ATTESTATION', 'ENABLED', 'DEVICES'], r.enrollments.map((e) => [e.id, e.label, e.kind, e.attestation, e.enabled, e.devicesProvisioned])));
    });
  cmd
    .command('show <id>')
    .description('show one enrollment')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<Enrollment>('GET', `/v1/enrollments/${encodeURIComponent(id)}`);
      emit(g, r, () => showEnrollment(r));
    });
  for (const action of ['enable', 'disable'] as const) {
    cmd
      .command(`${action} <id>`)
      .description(`${action} an enrollment`)
      .action(async (id: string, _o: unknown, c: Command) => {
        const g = c.optsWithGlobals<GlobalOptions>();
        const r = await Client.from(g).request<Enrollment>('POST', `/v1/enrollments/${encodeURIComponent(id)}/${action}`);
        emit(g, r, () => `enrollment ${r.id} ${r.enabled ? 'enabled' : 'disabled'}`);
      });
  }
  cmd.addCommand(enrollmentCrlCommand());
  return cmd;
}
