import { readSecretFile, zero, type KeyProtector } from '@fleetkey/crypto';
import { FleetkeyError, isFleetkeyError } from '@fleetkey/protocol';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from '../internal/secure-dir.js';
import { DeviceSealer, SEALED_SECRET_FILE } from '../sealing/device-sealer.js';
import { FileKeystore } from '../keystore/file-keystore.js';
import type { Keystore, KeyHandle } from '../keystore/keystore.js';
import { Pkcs11Keystore } from '../keystore/pkcs11-keystore.js';
import { BUNDLE_FILES, pinFilePath, readMachineSecret, type LoadedBundle } from './bundle.js';

export interface BundleKeystoreOptions {
  /** For a bundle whose keys/ are sealed with a passphrase (keystore.protector = 'passphrase'). */
  passphrase?: string | Uint8Array;
}

/**
 * Opens the keystore a bundle names. Secrets read for it (machine.secret, the PIN file) are
 * zeroed here: FileKeystore keeps its own copy and zeroes it on close.
 * @throws FleetkeyError CONFIG_INVALID | KEY_FILE_* | PKCS11_*
 */
export async function openBundleKeystore(bundle: LoadedBundle, options: BundleKeystoreOptions = {}): Promise<Keystore> {
  const ks = bundle.device.keystore;
  if (ks.type === 'file') {
    const dir = join(bundle.dir, BUNDLE_FILES.keysDir);
    if (ks.protector === 'passphrase') {
      if (options.passphrase === undefined) throw new FleetkeyError('CONFIG_INVALID', { detail: 'device bundle keys are sealed with a passphrase; none given' });
      return FileKeystore.open({ dir, protector: { kind: 'passphrase', passphrase: options.passphrase } });
    }
    if (ks.protector === 'tpm-sealed') {
      const sealer = await openBundleSealer(bundle);
      try {
        return await FileKeystore.open({ dir, protector: sealer.protector() });
      } finally {
        await sealer.close(); // the keystore holds its own copy
      }
    }
    const secret = await readMachineSecret(bundle);
    const protector: KeyProtector = { kind: 'machine', secret };
    try {
      return await FileKeystore.open({ dir, protector });
    } finally {
      zero(secret);
    }
  }
  // tpm2-pkcs11 reads its TCTI at C_Initialize; a TPM bundle names its TPM, so default to it.
  const tcti = bundle.device.tpmTcti;
  if (tcti !== null && ks.module.includes('tpm2_pkcs11') && (process.env['TPM2_PKCS11_TCTI'] ?? '') === '') process.env['TPM2_PKCS11_TCTI'] = tcti;
  const pinBytes = await readSecretFile(pinFilePath(bundle, ks.pinFile));
  try {
    // A JS string cannot be wiped; pkcs11js takes the PIN as a string, so this copy lives until GC.
    return Pkcs11Keystore.open({ module: ks.module, tokenLabel: ks.tokenLabel, pin: pinBytes.toString('utf8').trim() });
  } finally {
    zero(pinBytes);
  }
}

/**
 * The TPM-sealed storage of a bundle whose keystore protector is `tpm-sealed` (`<bundle>/sealed`).
 * At the first open on the device, the manufactured machine.secret is sealed to the TPM (so the
 * keys already under it still open) and then deleted: from then on the secret exists only
 * inside the TPM's sealed object and, while in use, in this process. The caller closes the
 * sealer; use its protector for the offline buffer and its blobs for the update floor.
 * @throws FleetkeyError TPM_SEAL_POLICY_FAILED | TPM_SEAL_WRONG_TPM | TPM_SEAL_CORRUPT | TPM_UNAVAILABLE | CONFIG_INVALID
 */
export async function openBundleSealer(bundle: LoadedBundle): Promise<DeviceSealer> {
  const tcti = bundle.device.tpmTcti;
  if (tcti === null) throw new FleetkeyError('CONFIG_INVALID', { detail: 'device bundle: a tpm-sealed keystore needs tpmTcti' });
  const dir = join(bundle.dir, BUNDLE_FILES.sealedDir);
  try {
    return await DeviceSealer.open({ dir, tcti, create: false });
  } catch (e) {
    if (!(isFleetkeyError(e) && e.code === 'KEY_FILE_NOT_FOUND' && (e.detail ?? '').endsWith(SEALED_SECRET_FILE))) throw e;
  }
  let initial: Buffer | undefined;
  try {
    initial = await readMachineSecret(bundle);
  } catch (e) {
    if (!(isFleetkeyError(e) && e.code === 'KEY_FILE_NOT_FOUND')) throw e;
  }
  try {
    const sealer = await DeviceSealer.open({ dir, tcti, ...(initial === undefined ? {} : { initialSecret: initial }) });
    if (initial !== undefined) {
      // Sealed and written (fsynced) before the plaintext copy goes.
      await unlink(join(bundle.dir, BUNDLE_FILES.machineSecret));
      await syncDir(bundle.dir);
    }
    return sealer;
  } finally {
    zero(initial);
  }
}

/**
 * The first free `operational-<n>` label. The IDevID key is never reused as an operational key:
 * a birth certificate outlives every operational certificate, and a compromise of the key
 * used daily must not let an attacker re-enrol as a new device.
 */
export async function nextOperationalLabel(keystore: Keystore, idevidLabel: string | null): Promise<string> {
  for (let n = 1; n < 10_000; n++) {
    const label = `operational-${n}`;
    if (label === idevidLabel) continue;
    if ((await keystore.getKey(label)) === undefined) return label;
  }
  throw new FleetkeyError('INTERNAL', { detail: 'no free operational key label' });
}

/** The IDevID key, which must exist for x509 attestation. */
export async function idevidKey(keystore: Keystore, label: string): Promise<KeyHandle> {
  const key = await keystore.getKey(label);
  if (key === undefined) throw new FleetkeyError('CONFIG_INVALID', { detail: `device bundle: IDevID key "${label}" not in the keystore` });
  return key;
}
