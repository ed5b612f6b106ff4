import { Command } from 'commander';
import { UsageError, type GlobalOptions } from '../client.js';
import { emit } from '../output.js';

const trimNewline = (b: Buffer): Buffer => b.subarray(0, b.length - (b.at(-1) === 0x0a ? 1 : 0));

/** `fleetkey device key export`: a bundle's key as standard PKCS#8 for third-party clients. */
export function deviceKeyCommand(): Command {
  const cmd = new Command('key').description("a device bundle's keys (run on the device)");
  cmd
    .command('export')
    .description('write a device key as PKCS#8 PEM for a third-party client (encrypted with a passphrase unless --unencrypted)')
    .requiredOption('--bundle <dir>', 'the device bundle')
    .requiredOption('--out <file>', 'where to write the PEM (created 0600, never overwritten)')
    .option('--key <which>', 'operational (the key in use), idevid (the birth-certificate key) or a keystore label', 'operational')
    .option('--passphrase-file <file>', 'passphrase the exported PKCS#8 is encrypted under (≥ 8 characters; mode 0600)')
    .option('--unencrypted', 'write an unencrypted PKCS#8 key (the file is still 0600)')
    .option('--bundle-passphrase-file <file>', 'passphrase of bundle keys sealed with one (mode 0600)')
    .action(async (o: { bundle: string; out: string; key: string; passphraseFile?: string; unencrypted?: boolean; bundlePassphraseFile?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      if ((o.passphraseFile === undefined) === (o.unencrypted !== true)) throw new UsageError('give either --passphrase-file (encrypted PKCS#8, the default) or --unencrypted');
      // Loaded here only: the device SDK and the crypto stack are not needed by any other device command.
      const [{ exportBundleKey }, { readSecretFile, writeSecretFile, zero }] = await Promise.all([import('@fleetkey/device'), import('@fleetkey/crypto')]);
      const exportPass = o.passphraseFile === undefined ? undefined : await readSecretFile(o.passphraseFile);
      const bundlePass = o.bundlePassphraseFile === undefined ? undefined : await readSecretFile(o.bundlePassphraseFile);
      try {
        const r = await exportBundleKey(o.bundle, {
          key: o.key,
          ...(exportPass === undefined ? { unencrypted: true } : { exportPassphrase: trimNewline(exportPass) }),
          ...(bundlePass === undefined ? {} : { passphrase: trimNewline(bundlePass) }),
        });
        await writeSecretFile(o.out, Buffer.from(r.pem));
        emit(g, { label: r.label, encrypted: r.encrypted, out: o.out }, () => `wrote ${r.encrypted ? 'encrypted ' : ''}PKCS#8 key ${r.label} to ${o.out} (mode 0600)`);
      } finally {
        if (exportPass !== undefined) zero(exportPass);
        if (bundlePass !== undefined) zero(bundlePass);
      }
    });
  return cmd;
}
