import { FleetkeyError } from '@fleetkey/protocol';
import { loadBundle } from './bundle.js';
import { openBundleKeystore, type BundleKeystoreOptions } from './bundle-keystore.js';
import { encryptedPkcs8Pem } from '../keystore/encrypted-pkcs8.js';

export interface KeyExportOptions extends BundleKeystoreOptions {
  /** Which key: `operational` (the one in use, default), `idevid`, or a keystore label. */
  key?: string;
  /**
   * Encrypts the PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo, PBES2: PBKDF2-HMAC-SHA256 with
   * 600,000 iterations and AES-256-CBC, RFC 8018) under this passphrase. Omit only with `unencrypted: true`.
   */
  exportPassphrase?: string | Uint8Array;
  /** An unencrypted PKCS#8 PEM: only when asked for by name, for a third-party client on the device. */
  unencrypted?: boolean;
}

export interface ExportedKey {
  readonly label: string;
  readonly encrypted: boolean;
  /** `-----BEGIN ENCRYPTED PRIVATE KEY-----` (or `PRIVATE KEY` when unencrypted). */
  readonly pem: string;
}

/**
 * A device key of a bundle as standard PKCS#8, for third-party clients (mosquitto_pub, curl,
 * a C or Python MQTT client) that cannot read the SDK's sealed key files. Encrypted with a
 * passphrase unless `unencrypted` is set explicitly. Keys inside a PKCS#11 token (TPM, HSM)
 * never leave it: KEY_NOT_EXPORTABLE.
 * @throws FleetkeyError CONFIG_INVALID | KEY_NOT_EXPORTABLE | KEY_FILE_*
 */
export async function exportBundleKey(bundleDir: string, options: KeyExportOptions = {}): Promise<ExportedKey> {
  const passphrase = options.exportPassphrase;
  if (options.unencrypted !== true && (passphrase === undefined || passphrase.length < 8)) {
    throw new FleetkeyError('CONFIG_INVALID', { detail: 'an export passphrase of at least 8 characters is required (or ask for an unencrypted key explicitly)' });
  }
  const bundle = await loadBundle(bundleDir);
  const which = options.key ?? 'operational';
  let label: string;
  if (which === 'operational') {
    if (bundle.provisioned === null) throw new FleetkeyError('CONFIG_INVALID', { detail: 'device bundle: not provisioned yet, so it has no operational key' });
    label = bundle.provisioned.operationalKeyLabel;
  } else if (which === 'idevid') {
    if (bundle.device.idevidKeyLabel === null) throw new FleetkeyError('CONFIG_INVALID', { detail: 'device bundle: no birth-certificate key (not an x509 device)' });
    label = bundle.device.idevidKeyLabel;
  } else label = which;
  const keystore = await openBundleKeystore(bundle, options);
  try {
    const handle = await keystore.getKey(label);
    if (handle === undefined) throw new FleetkeyError('CONFIG_INVALID', { detail: `device bundle: no key labelled ${label}` });
    const key = handle.tlsKey();
    if (handle.storage !== 'file' || key === undefined) throw new FleetkeyError('KEY_NOT_EXPORTABLE', { detail: `${label} lives in a PKCS#11 token and never leaves it` });
    const pem =
      options.unencrypted === true
        ? (key.export({ type: 'pkcs8', format: 'pem' }) as string)
        : await encryptedPkcs8Pem(key, typeof passphrase === 'string' ? Buffer.from(passphrase) : passphrase!);
    return { label, encrypted: options.unencrypted !== true, pem };
  } finally {
    await keystore.close();
  }
}
