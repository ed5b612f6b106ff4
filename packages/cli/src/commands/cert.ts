import { readFileSync, writeFileSync } from 'node:fs';
import type { Certificate, IssuedCertificate } from '@fleetkey/protocol';
import { REVOCATION_REASONS } from '@fleetkey/protocol/base';
import { Command, Option } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, fields, table } from '../output.js';

function showCert(c: Certificate): string {
  return fields([
    ['serial', c.serial],
    ['device', c.deviceId],
    ['kind', c.kind],
    ['status', c.status],
    ['method', c.method],
    ['not before', c.notBefore],
    ['not after', c.notAfter],
    ['sha-256', c.fingerprintSha256],
    ['superseded by', c.supersededBy],
    ['revoked', c.revokedAt === null ? null : `${c.revokedAt} (${c.revocationReason})`],
  ]);
}

export function certCommand(): Command {
  const cmd = new Command('cert').description('device certificates');
  cmd
    .command('issue')
    .description('issue a certificate for a device from its CSR (roles manufacturing, admin)')
    .requiredOption('--device <id>', 'device id')
    .requiredOption('--csr <file>', 'PKCS#10 CSR (PEM)')
    .option('--validity <duration>', 'e.g. 24h, 30d (minimum 1h)')
    .addOption(new Option('--kind <kind>', 'certificate kind').choices(['operational', 'idevid']))
    .option('--out <file>', 'write the certificate chain (PEM) here')
    .action(async (o: { device: string; csr: string; validity?: string; kind?: string; out?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<IssuedCertificate>('POST', '/v1/certificates', {
        deviceId: o.device.toLowerCase(),
        csr: readFileSync(o.csr, 'utf8'),
        ...(o.validity === undefined ? {} : { validity: o.validity }),
        ...(o.kind === undefined ? {} : { kind: o.kind }),
      });
      if (o.out !== undefined) writeFileSync(o.out, r.chainPem, { mode: 0o644 });
      emit(g, r, () => (o.out === undefined ? r.chainPem.trimEnd() : `${showCert(r.certificate)}\nchain written to ${o.out}`));
    });
  cmd
    .command('list')
    .description('list certificates, newest first')
    .option('--device <id>', 'only this device')
    .option('--limit <n>', 'at most n', '100')
    .action(async (o: { device?: string; limit: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const q = new URLSearchParams({ limit: o.limit });
      if (o.device !== undefined) q.set('deviceId', o.device.toLowerCase());
      const r = await Client.from(g).request<{ certificates: Certificate[] }>('GET', `/v1/certificates?${q}`);
      emit(g, r, () => table(['SERIAL', 'DEVICE', 'KIND', 'STATUS', 'NOT AFTER', 'METHOD'], r.certificates.map((x) => [x.serial, x.deviceId, x.kind, x.status, x.notAfter, x.method])));
    });
  cmd
    .command('show <serial>')
    .description('show one certificate')
    .action(async (serial: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<Certificate>('GET', `/v1/certificates/${encodeURIComponent(serial.toLowerCase())}`);
      emit(g, r, () => showCert(r));
    });
  cmd
    .command('revoke <serial>')
    .description('revoke a certificate (RFC 5280 §5.3.1 reason); effective at once, CRL re-signed')
    .addOption(new Option('--reason <reason>', 'reason code').choices([...REVOCATION_REASONS]).makeOptionMandatory())
    .action(async (serial: string, o: { reason: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<Certificate>('POST', `/v1/certificates/${encodeURIComponent(serial.toLowerCase())}/revoke`, { reason: o.reason });
      emit(g, r, () => `certificate ${r.serial} revoked (${r.revocationReason})`);
    });
  return cmd;
}
