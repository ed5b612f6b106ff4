import { readFileSync, writeFileSync } from 'node:fs';
import type { CaList } from '@fleetkey/protocol';
import { parseDuration } from '@fleetkey/protocol/base';
import { Command } from 'commander';
import { Client, UsageError, type GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';

export function caCommand(): Command {
  const cmd = new Command('ca').description('the certificate authorities');
  cmd
    .command('show')
    .description('list the CAs, their keystores and validity')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<CaList>('GET', '/v1/ca');
      emit(g, r, () => table(['ID', 'ROLE', 'STATUS', 'KEYSTORE', 'SUBJECT', 'NOT AFTER'], r.authorities.map((a) => [a.id, a.role, a.status, a.keystore, a.subject, a.notAfter])) + `\nOCSP: ${r.ocspUrl}`);
    });
  cmd
    .command('export')
    .description('write the CA certificates (PEM) — or, with --root-key, the root key encrypted under a passphrase')
    .requiredOption('--out <file>', 'output file')
    .option('--root-key', 'export the root private key (encrypted) so the root can be kept offline')
    .option('--passphrase-file <file>', 'passphrase for --root-key (at least 12 characters)')
    .action(async (o: { out: string; rootKey?: boolean; passphraseFile?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const client = Client.from(g);
      if (o.rootKey === true) {
        if (o.passphraseFile === undefined) throw new Error('--root-key needs --passphrase-file');
        const passphrase = readFileSync(o.passphraseFile, 'utf8').trim();
        const r = await client.request<{ armored: string }>('POST', '/v1/ca/root/export', { passphrase });
        writeFileSync(o.out, r.armored, { mode: 0o600 });
        emit(g, { out: o.out }, () => `root key written (encrypted) to ${o.out}; remove it from the server with: fleetkey ca remove-root-key`);
        return;
      }
      const r = await client.request<CaList>('GET', '/v1/ca');
      writeFileSync(o.out, r.authorities.filter((a) => a.status !== 'retired').map((a) => a.certificatePem).join(''), { mode: 0o644 });
      emit(g, { out: o.out, count: r.authorities.length }, () => `${r.authorities.length} CA certificates written to ${o.out}`);
    });
  cmd
    .command('rotate')
    .description('create a new issuing CA; the previous one stays trusted while its certificates live')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ id: string }>('POST', '/v1/ca/rotate');
      emit(g, r, () => `new issuing CA ${r.id}`);
    });
  cmd
    .command('sign-root-crl')
    .description("re-sign the root's CRL (served while the root key is offline) before its next update: on the server with its root key, or here with an exported one")
    .option('--validity <duration>', 'nextUpdate this far ahead (default: ca.rootCrlValidity on the server, 365d here)')
    .option('--root-key <file>', 'sign here with the root key exported by `ca export --root-key` (the server never sees it)')
    .option('--passphrase-file <file>', 'passphrase of --root-key')
    .action(async (o: { validity?: string; rootKey?: string; passphraseFile?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const client = Client.from(g);
      const body = o.rootKey === undefined ? (o.validity === undefined ? {} : { validity: o.validity }) : { crlPem: await signRootCrlOffline(client, o.rootKey, o.passphraseFile, o.validity ?? '365d') };
      const r = await client.request<{ crlNumber: number; nextUpdate: string }>('POST', '/v1/ca/root/crl', body);
      emit(g, r, () => `root CRL ${r.crlNumber} signed, next update ${r.nextUpdate}`);
    });
  cmd
    .command('remove-root-key')
    .description('delete the root key from the server (export it first); rotation then needs it restored')
    .action(async (_o: unknown, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      await Client.from(g).request('POST', '/v1/ca/root/remove');
      emit(g, { removed: true }, () => 'root key removed from the server');
    });
  return cmd;
}

/** Signs the next root CRL on this machine with an exported root key; returns it as PEM. */
async function signRootCrlOffline(client: Client, keyFile: string, passphraseFile: string | undefined, validity: string): Promise<string> {
  if (passphraseFile === undefined) throw new UsageError('--root-key needs --passphrase-file');
  const validityMs = parseDuration(validity);
  if (validityMs === null || validityMs < 86_400_000) throw new UsageError('--validity must be a duration of at least 1d');
  // Loaded only here: the crypto stack would add most of a second to every other `ca` command.
  const { buildCrl, importRootKey, readVerifiedCrl, SoftwareSigner, toPem } = await import('@fleetkey/crypto');
  const root = (await client.request<CaList>('GET', '/v1/ca')).authorities.find((a) => a.role === 'root');
  if (root === undefined) throw new Error('the server has no root CA');
  // RFC 5280 §5.2.3: the number continues the one the server serves (the server refuses anything lower).
  const current = await client.bytes(`/pki/crl/${root.id}.crl`);
  const crlNumber = current === null ? 1n : readVerifiedCrl(current, root.certificatePem).crlNumber + 1n;
  const signer = new SoftwareSigner(await importRootKey(readFileSync(keyFile, 'utf8'), readFileSync(passphraseFile, 'utf8').trim()));
  try {
    const now = Date.now();
    const der = await buildCrl({ issuerCertificate: root.certificatePem, signer, thisUpdate: new Date(now), nextUpdate: new Date(now + validityMs), crlNumber, entries: [] });
    return toPem(der, 'X509 CRL');
  } finally {
    await signer.close();
  }
}
