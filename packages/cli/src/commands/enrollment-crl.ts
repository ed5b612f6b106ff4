import { readFileSync } from 'node:fs';
import type { EnrollmentCrl, EnrollmentCrlList } from '@fleetkey/protocol';
import { Command } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, fields, table } from '../output.js';

/** A CRL file as the API takes it: PEM as is, DER as base64. */
export function crlFileBody(file: string, issuer?: string): { crl: string; issuerPem?: string } {
  const bytes = readFileSync(file);
  const text = bytes.toString('latin1');
  return { crl: text.includes('-----BEGIN X509 CRL-----') ? text : bytes.toString('base64'), ...(issuer === undefined ? {} : { issuerPem: readFileSync(issuer, 'utf8') }) };
}

/** `fleetkey enrollment crl add|list`: CRLs of an X.509 enrollment's outside trust anchors. */
export function enrollmentCrlCommand(): Command {
  const cmd = new Command('crl').description("CRLs of an X.509 enrollment's outside trust anchors (verified against them; refreshed from their distribution points)");
  cmd
    .command('add <id>')
    .description('upload a CRL (PEM or DER) signed by one of the enrollment\'s anchors, or by --issuer')
    .requiredOption('--file <file>', 'the CRL, PEM or DER')
    .option('--issuer <file>', 'PEM: the CA that signed it when it is not an anchor (an issuing CA), then certificates up to an anchor')
    .action(async (id: string, o: { file: string; issuer?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<EnrollmentCrl>('POST', `/v1/enrollments/${encodeURIComponent(id)}/crls`, crlFileBody(o.file, o.issuer));
      emit(g, r, () =>
        fields([
          ['issuer', r.issuer],
          ['this update', r.thisUpdate],
          ['next update', r.nextUpdate],
          ['number', r.crlNumber],
          ['entries', r.entries],
        ]),
      );
    });
  cmd
    .command('list <id>')
    .description('the stored CRLs, the revocation policy and the distribution points fetched')
    .action(async (id: string, _o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<EnrollmentCrlList>('GET', `/v1/enrollments/${encodeURIComponent(id)}/crls`);
      emit(g, r, () =>
        [
          `revocation: ${r.revocation}${r.crlUrls.length ? `; fetched from ${r.crlUrls.join(', ')}` : ''}`,
          table(
            ['ISSUER', 'THIS UPDATE', 'NEXT UPDATE', 'NUMBER', 'ENTRIES', 'SOURCE', 'STALE'],
            r.crls.map((x) => [x.issuer, x.thisUpdate, x.nextUpdate, x.crlNumber ?? '-', x.entries, x.url ?? x.source, x.stale]),
          ),
        ].join('\n'),
      );
    });
  return cmd;
}
