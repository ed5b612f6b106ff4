import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSasToken, zero } from '@fleetkey/crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Keystore, KeyHandle } from '../keystore/keystore.js';
import { BUNDLE_FILES, readDeviceKey, type LoadedBundle, type ProvisionedRecord } from '../provisioning/bundle.js';

/** How the device proves itself to the gateway. */
export type AuthMode = 'mtls' | 'sas';

/** Default lifetime of a SAS connect token; the gateway refuses tokens valid for more than an hour. */
export const DEFAULT_SAS_LIFETIME_MS = 15 * 60_000;

/** What one connection attempt presents. Built afresh for every (re)connect. */
export type AttemptCredentials =
  | { readonly kind: 'mtls'; readonly certPem: string; readonly keyPem: Buffer; readonly serial: string }
  | { readonly kind: 'sas'; readonly username: string; readonly password: Buffer };

export function provisionedOf(bundle: LoadedBundle): ProvisionedRecord {
  if (bundle.provisioned === null) {
    throw new FleetkeyError('CONFIG_INVALID', { detail: `device bundle ${bundle.dir} is not provisioned; run \`fleetkey agent provision\` first` });
  }
  return bundle.provisioned;
}

/**
 * Picks the authentication for a bundle. Symmetric-key devices use a SAS token (their operational
 * certificate exists too, but the symmetric key is what the enrollment trusts). Certificate
 * devices use mTLS with the operational key when the keystore can hand Node's TLS a key.
 *
 * A PKCS#11-held operational key (TPM, HSM) cannot sign a Node TLS handshake (no engine or
 * provider hook in `tls.connect`), and the session-token endpoint also needs TLS client
 * authentication or a symmetric key, so such an x509/TPM device needs an mTLS-capable TLS stack
 * (OpenSSL with the pkcs11 provider, or the device's own MQTT client): refused here rather than
 * faked.
 * @throws FleetkeyError CONFIG_INVALID
 */
export async function chooseAuth(bundle: LoadedBundle, keystore: Keystore, requested: AuthMode | 'auto'): Promise<AuthMode> {
  const wantSas = requested === 'sas' || (requested === 'auto' && bundle.device.attestation === 'symmetric');
  if (wantSas) {
    if (bundle.device.attestation !== 'symmetric') throw new FleetkeyError('CONFIG_INVALID', { detail: 'SAS authentication needs a symmetric-key bundle' });
    return 'sas';
  }
  const key = await operationalKey(keystore, provisionedOf(bundle).operationalKeyLabel);
  if (key.tlsKey() === undefined) {
    throw new FleetkeyError('CONFIG_INVALID', {
      detail: `the operational key is held in a ${key.storage} token; Node's TLS cannot use it for mTLS and this bundle has no symmetric key`,
    });
  }
  return 'mtls';
}

/** The key the current record certifies (renewal moves it to a new label). */
export async function operationalKey(keystore: Keystore, label: string): Promise<KeyHandle> {
  const key = await keystore.getKey(label);
  if (key === undefined) throw new FleetkeyError('CONFIG_INVALID', { detail: `device bundle: operational key "${label}" is not in the keystore` });
  return key;
}

/** Reads the current operational chain (renewal replaces it) and exports the key for Node's TLS. */
export async function mtlsCredentials(bundle: LoadedBundle, keystore: Keystore, record: ProvisionedRecord): Promise<AttemptCredentials> {
  const certPem = await readFile(join(bundle.dir, BUNDLE_FILES.operationalChain), 'utf8');
  const key = (await operationalKey(keystore, record.operationalKeyLabel)).tlsKey();
  if (key === undefined) throw new FleetkeyError('CONFIG_INVALID', { detail: 'operational key cannot be used by Node TLS' });
  // Node's TLS takes PEM; a Buffer at least lets the caller wipe this copy once the socket is up.
  const keyPem = Buffer.from(key.export({ type: 'pkcs8', format: 'pem' }) as string);
  const serial = new X509Certificate(certPem).serialNumber.toLowerCase();
  return { kind: 'mtls', certPem, keyPem, serial };
}

/** username = device id, password = SAS over `mqtt/<deviceId>`, minted per attempt so it is always fresh. */
export async function sasCredentials(bundle: LoadedBundle, now: Date, lifetimeMs: number): Promise<AttemptCredentials> {
  const key = await readDeviceKey(bundle);
  try {
    const token = createSasToken({ resource: `mqtt/${bundle.device.deviceId}`, expiresAt: new Date(now.getTime() + lifetimeMs), key });
    return { kind: 'sas', username: bundle.device.deviceId, password: Buffer.from(token) };
  } finally {
    zero(key);
  }
}

/** Wipes what an attempt exported once it is no longer needed. */
export function wipe(c: AttemptCredentials | undefined): void {
  if (c === undefined) return;
  zero(c.kind === 'mtls' ? c.keyPem : c.password);
}
